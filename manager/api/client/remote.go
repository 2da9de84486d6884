package client

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
	"github.com/vramkeeper/vramkeeper/manager/serving"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// Remote is a running instance seen through its API with the shape of the
// in-process manager (the desktop app's Keeper), so that the window can run
// in a process of its own. Snapshot and History answer from a cache that
// Run keeps fresh from the event stream and a poll; calls that change
// state refresh it before they return, so a caller reading Snapshot right
// after sees the effect.
type Remote struct {
	c   *Client
	log *slog.Logger
	// expect, when set, is what the instance must manage: after a lost
	// connection, whatever answers on the address is checked again before
	// its state is shown (another instance may have taken the port).
	expect *wire.Instance

	mu   sync.Mutex
	snap manager.Snapshot
	hist []manager.Event
	subs map[int]chan manager.Event
	next int
	// lost: the connection failed and the instance was not checked again
	// since; polls wait for follow to check it.
	lost bool
	// pollErr and streamErr are the failures last logged, so that an
	// instance that went away is one log line, not one per retry.
	pollErr, streamErr string
}

// remotePoll is how often Run reads the status besides events, for what
// has no event of its own: requests holding a model (in flight, last
// used) and the card's readings between events.
const remotePoll = 2 * time.Second

// Reconnecting to a lost event stream waits reconnectFirst, doubling up to
// reconnectMax while it keeps failing.
const (
	reconnectFirst = time.Second
	reconnectMax   = 30 * time.Second
)

// NewRemote wraps a client; call Refresh once and run Run.
func NewRemote(c *Client, log *slog.Logger) *Remote {
	if log == nil {
		log = slog.Default()
	}
	return &Remote{c: c, log: log, subs: map[int]chan manager.Event{}}
}

// Expect makes Run check, whenever it reconnects, that the instance still
// manages want's Ollama and state folder; call it before Run.
func (r *Remote) Expect(want wire.Instance) { r.expect = &want }

// Refresh reads the status and the history into the cache.
func (r *Remote) Refresh(ctx context.Context) error {
	s, err := r.c.Snapshot(ctx)
	if err != nil {
		return err
	}
	h, err := r.c.History(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.snap, r.hist = s, h
	r.mu.Unlock()
	return nil
}

func (r *Remote) refreshStatus(ctx context.Context) {
	r.mu.Lock()
	lost := r.lost && r.expect != nil
	r.mu.Unlock()
	if lost {
		return // follow checks what answers first
	}
	s, err := r.c.Snapshot(ctx)
	if ctx.Err() != nil {
		return
	}
	r.logChange(&r.pollErr, "reading the running instance's status", err)
	if err != nil {
		r.mu.Lock()
		r.lost = true
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	// The time of the reading alone is no news.
	was := r.snap
	was.Time = s.Time
	changed := !reflect.DeepEqual(was, s)
	r.snap = s
	r.mu.Unlock()
	if changed {
		// A change with no event of its own: say when the poll finds
		// news.
		r.broadcast(manager.Event{Kind: manager.EventVRAM, Time: time.Now()})
	}
}

// Run follows the instance until ctx ends: it relays its events to the
// subscribers (after refreshing the cache, so that a subscriber reading
// History sees the event) and polls its status. A broken event stream is
// reopened after a second.
func (r *Remote) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(remotePoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.refreshStatus(ctx)
			}
		}
	}()
	wait := reconnectFirst
	for ctx.Err() == nil {
		followed, err := r.follow(ctx)
		if ctx.Err() != nil {
			break
		}
		r.logChange(&r.streamErr, "event stream from the running instance", err)
		if followed {
			wait = reconnectFirst
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, reconnectMax)
	}
	wg.Wait()
	r.mu.Lock()
	for id, ch := range r.subs {
		close(ch)
		delete(r.subs, id)
	}
	r.mu.Unlock()
}

// logChange logs a failure when it differs from the last one logged under
// *last, and the recovery once: an instance that went away costs one line,
// however often it is retried.
func (r *Remote) logChange(last *string, what string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil && *last != "":
		r.log.Info(what + ": working again")
		*last = ""
	case err != nil && err.Error() != *last:
		r.log.Warn(what+" (retrying quietly)", "err", err)
		*last = err.Error()
	}
}

// follow relays one event stream until it ends; followed says it was
// connected and checked, so the next retry need not wait long.
func (r *Remote) follow(ctx context.Context) (followed bool, err error) {
	// Returning early (a check failed) must end the stream's reader too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, errc, err := r.c.Events(ctx)
	if err != nil {
		r.mu.Lock()
		r.lost = true
		r.mu.Unlock()
		return false, err
	}
	if r.expect != nil {
		if _, err := r.c.Verify(ctx, *r.expect); err != nil {
			r.mu.Lock()
			r.lost = true
			r.mu.Unlock()
			return false, err
		}
	}
	r.mu.Lock()
	r.lost = false
	r.mu.Unlock()
	// The stream is live once its headers are in: read the state again so
	// that nothing between the last read and now is missed, and tell the
	// subscribers to look.
	if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("refreshing after connecting", "err", err)
	}
	r.broadcast(manager.Event{Kind: manager.EventVRAM, Time: time.Now()})
	for e := range ch {
		if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("refreshing after an event", "err", err)
		}
		r.broadcast(e)
	}
	return true, <-errc
}

func (r *Remote) broadcast(e manager.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sub := range r.subs {
		select {
		case sub <- e:
		default: // a slow subscriber misses events, as with the manager
		}
	}
}

// Snapshot is the last status read.
func (r *Remote) Snapshot() manager.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snap
}

// History is the last history read.
func (r *Remote) History() []manager.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hist
}

// Subscribe returns the instance's events as Run relays them, plus a
// "vram" event each time the stream (re)connects, since events may have
// been missed; the channel is closed by the returned function or when Run
// ends.
func (r *Remote) Subscribe(buf int) (<-chan manager.Event, func()) {
	ch := make(chan manager.Event, buf)
	r.mu.Lock()
	id := r.next
	r.next++
	r.subs[id] = ch
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.subs[id]; ok {
			delete(r.subs, id)
			close(ch)
		}
	}
}

// after refreshes the cache once a call that changed state returns.
func (r *Remote) after(ctx context.Context, err error) error {
	if rerr := r.Refresh(ctx); rerr != nil && err == nil && ctx.Err() == nil {
		r.log.Warn("refreshing after a call", "err", rerr)
	}
	return err
}

// LoadAt loads a model at a given context length (0: its own).
func (r *Remote) LoadAt(ctx context.Context, name string, numCtx int, reason string) (manager.LoadResult, error) {
	res, err := r.c.LoadAt(ctx, name, numCtx, reason)
	return res, r.after(ctx, err)
}

// Yield gives the GPU back and returns the models unloaded.
func (r *Remote) Yield(ctx context.Context) ([]string, error) {
	names, err := r.c.Yield(ctx)
	return names, r.after(ctx, err)
}

// Restore puts back what Yield unloaded and returns the models loaded.
func (r *Remote) Restore(ctx context.Context) ([]string, error) {
	names, err := r.c.Restore(ctx)
	return names, r.after(ctx, err)
}

// Unload unloads a model.
func (r *Remote) Unload(ctx context.Context, name string) error {
	return r.after(ctx, r.c.Unload(ctx, name))
}

// SetPinned pins or unpins a model.
func (r *Remote) SetPinned(ctx context.Context, name string, pinned bool) error {
	return r.after(ctx, r.c.SetPinned(ctx, name, pinned))
}

// SetPaused pauses or resumes automatic management.
func (r *Remote) SetPaused(ctx context.Context, paused bool) error {
	return r.after(ctx, r.c.SetPaused(ctx, paused))
}

// BestModelForTask chooses and loads the best model for a task.
func (r *Remote) BestModelForTask(ctx context.Context, task, role string) (manager.Choice, error) {
	c, err := r.c.BestModelForTask(ctx, task, role)
	return c, r.after(ctx, err)
}

// Plan asks the instance what a load would do now; nothing changes, so
// the cache is not read again.
func (r *Remote) Plan(ctx context.Context, req manager.PlanRequest) (manager.Plan, error) {
	return r.c.Plan(ctx, req)
}

// Apply changes the settings the patch names on the instance.
func (r *Remote) Apply(ctx context.Context, p manager.SettingsPatch) error {
	return r.after(ctx, r.c.Apply(ctx, p))
}

// Pull downloads a model through the instance, with its progress; once it
// returns, the cache lists the model.
func (r *Remote) Pull(ctx context.Context, req serving.PullRequest, progress func(serving.PullProgress)) error {
	return r.after(ctx, r.c.Pull(ctx, req, progress))
}

// Timeline reads the instance's timeline after since; the window's chart
// calls it from its own goroutine, so it is not cached like Snapshot.
func (r *Remote) Timeline(ctx context.Context, since time.Time) (timeline.Window, error) {
	return r.c.Timeline(ctx, since)
}
