// Package manager keeps Ollama models inside a VRAM budget: it discovers
// installed models, estimates what each needs before loading it, picks the
// best one for a task, and loads and evicts so the card never overflows.
//
// One goroutine (Run) owns all state. Every other goroutine talks to it by
// sending a closure on calls and waiting for a reply on a channel of its
// own; slow work (HTTP to the server) runs in goroutines the manager owns
// and reports back the same way, so the owner never blocks on I/O.
package manager

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/score"
)

const mib = 1 << 20

// Options configure a Manager: what it talks to and how often, fixed at
// New, and the initial Settings, which Apply changes later.
type Options struct {
	Runtime Runtime
	GPU     GPU
	// StateDir holds state.json and history.jsonl; "" keeps nothing.
	StateDir     string
	RefreshEvery time.Duration // discovery timer, default 30 s
	PollEvery    time.Duration // /api/ps and driver poll, default 2 s
	Logger       *slog.Logger
	Now          func() time.Time
	Settings     Settings
}

func (o *Options) setDefaults() error {
	if o.Runtime == nil {
		return errors.New("manager: no runtime")
	}
	if o.GPU == nil {
		return errors.New("manager: no GPU probe")
	}
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = 30 * time.Second
	}
	if o.PollEvery <= 0 {
		o.PollEvery = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Errors callers can test with errors.Is.
var (
	ErrNeverFits   = evict.ErrNeverFits
	ErrNoCandidate = errors.New("no installed model suits the task")
	ErrPaused      = errors.New("automatic management is paused")
	ErrStopped     = errors.New("manager stopped")
	ErrUnknownTask = score.ErrUnknownTask
	ErrUnknownRole = score.ErrUnknownRole
	ErrLoadFailed  = errors.New("load failed")
)

// Manager is the owner of all model state. Create it with New, start Run in
// a goroutine, and call its methods from anywhere.
type Manager struct {
	rt    Runtime
	gpu   GPU
	now   func() time.Time
	every struct{ refresh, poll time.Duration }
	log   *slog.Logger
	calls chan func()
	done  chan struct{} // closed when Run returns
	snap  atomic.Pointer[Snapshot]
	hub   *hub

	// st is touched only by the Run goroutine.
	st state

	statePath   string
	catalogPath string
	started     atomic.Bool
}

// New builds a Manager; it does no I/O beyond reading its state files.
func New(opt Options) (*Manager, error) {
	if err := opt.setDefaults(); err != nil {
		return nil, err
	}
	set, policy, err := opt.Settings.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		rt:    opt.Runtime,
		gpu:   opt.GPU,
		now:   opt.Now,
		log:   opt.Logger,
		calls: make(chan func()),
		done:  make(chan struct{}),
	}
	var histFile string
	if opt.StateDir != "" {
		m.statePath = filepath.Join(opt.StateDir, "state.json")
		m.catalogPath = filepath.Join(opt.StateDir, "catalog.json")
		histFile = filepath.Join(opt.StateDir, "history.jsonl")
	}
	m.hub = newHub(500, histFile, m.log)
	p, err := loadPersisted(m.statePath)
	if err != nil {
		m.log.Warn("starting without saved state", "err", err)
	}
	m.every.refresh, m.every.poll = opt.RefreshEvery, opt.PollEvery
	m.st = newState(p, set, policy)
	if m.st.catalog, err = loadCatalog(m.catalogPath); err != nil {
		m.log.Warn("model details will be read again", "err", err)
	}
	m.publish()
	return m, nil
}

// Run owns the state until ctx is cancelled; it returns after every
// goroutine it started has stopped.
func (m *Manager) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("manager: Run called twice")
	}
	defer close(m.done)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	m.st.spawn = func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	defer func() {
		cancel()
		m.failAll(ErrStopped)
		// Drain reports from workers so none blocks on calls while we wait.
		stopped := make(chan struct{})
		go func() { wg.Wait(); close(stopped) }()
		for {
			select {
			case <-m.calls:
			case <-stopped:
				return
			}
		}
	}()

	m.startDiscovery()
	m.startPoll()
	refresh := time.NewTicker(m.every.refresh)
	defer refresh.Stop()
	poll := time.NewTicker(m.every.poll)
	defer poll.Stop()
	for {
		// Publishing copies every model; skip it when nothing visible
		// changed, so hot calls (a request for a loaded model) stay cheap.
		// Use counts and in-flight numbers alone wait for the next poll.
		visible := true
		select {
		case <-ctx.Done():
			return nil
		case f := <-m.calls:
			m.st.quiet = false
			f()
			visible = !m.st.quiet
		case <-refresh.C:
			m.startDiscovery()
			visible = false
		case <-poll.C:
			m.startPoll()
			visible = m.st.usageDirty
		}
		if m.pump() || visible {
			m.publish()
			m.st.usageDirty = false
		}
		for _, f := range m.st.replies {
			f()
		}
		m.st.replies = m.st.replies[:0]
	}
}

// reply answers a waiter after the next publish, so a caller that reads
// Snapshot after its call returns sees the state the call produced.
func (m *Manager) reply(w *waiter, r opResult) {
	m.st.replies = append(m.st.replies, func() { w.reply <- r })
}

// wake is reply for plain error channels (Refresh).
func (m *Manager) wake(chs []chan error, err error) {
	m.st.replies = append(m.st.replies, func() {
		for _, ch := range chs {
			ch <- err
		}
	})
}

// do runs f on the owner goroutine and waits until it has run.
func (m *Manager) do(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	// Answer after the publish that follows f, so the caller's next
	// Snapshot shows what f did.
	select {
	case m.calls <- func() { f(); m.st.replies = append(m.st.replies, func() { close(ran) }) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return ErrStopped
	}
	<-ran
	return nil
}

// report is how worker goroutines hand results to the owner; it gives up
// when the manager is stopping.
func (m *Manager) report(f func()) {
	select {
	case m.calls <- f:
	case <-m.done:
	}
}

// emit records an event and sends it to subscribers.
func (m *Manager) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	m.log.Info("event", "kind", e.Kind, "model", e.Model, "for", e.For, "reason", e.Reason, "bytes", e.Bytes, "err", e.Error)
	m.hub.publish(e)
}

// Subscribe returns a channel of events and a function that ends the
// subscription. Events are never blocked on: a subscriber more than buf
// events behind loses the excess.
func (m *Manager) Subscribe(buf int) (<-chan Event, func()) {
	if buf <= 0 {
		buf = 64
	}
	return m.hub.subscribe(buf)
}

// History returns the most recent loads, unloads, evictions and failures.
func (m *Manager) History() []Event { return m.hub.recent() }

// Snapshot returns the latest published state; it is a value, safe to keep.
func (m *Manager) Snapshot() Snapshot { return *m.snap.Load() }

func (m *Manager) savePersisted() {
	if err := m.st.persisted().save(m.statePath); err != nil {
		m.log.Warn("state not saved", "err", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// fmtBytes is the one formatting of sizes in reasons and logs.
func fmtBytes(b uint64) string { return config.FormatBytes(b) }
