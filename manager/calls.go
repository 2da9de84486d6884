package manager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/score"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// The manager's methods. Each sends one event to the owner goroutine and
// waits for its answer, its context or the manager's stop, whichever comes
// first; after Run has returned they fail with ErrStopped at once.

// send hands ev to the owner. Once the owner is stopping it takes no more
// events, so send fails at once (its own workers, stopping too, must not
// wait for it).
func (m *Manager) send(ctx context.Context, ev any) error {
	select {
	case <-m.stopping:
		return ErrStopped
	default:
	}
	select {
	case m.events <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-m.stopping:
		return ErrStopped
	}
}

// await waits for the answer to a request sent with w; a caller that gives
// up tells the owner, which gives back a lease it may have been granted.
func (m *Manager) await(ctx context.Context, w *waiter) (result, error) {
	select {
	case r := <-w.reply:
		return r, r.err
	case <-ctx.Done():
		_ = m.send(context.Background(), evCancel{w}) // bounded: ends with the manager
		return result{}, ctx.Err()
	case <-m.done:
		return result{}, ErrStopped
	}
}

// ask sends an event carrying reply and waits for it.
func (m *Manager) ask(ctx context.Context, ev any, reply chan error) error {
	if err := m.send(ctx, ev); err != nil {
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return ErrStopped
	}
}

// Refresh lists the installed models and reads the server and the card
// now, and waits for both.
func (m *Manager) Refresh(ctx context.Context) error {
	ev := evRefresh{list: make(chan error, 1), poll: make(chan error, 1)}
	if err := m.send(ctx, ev); err != nil {
		return err
	}
	var first error
	for _, ch := range []chan error{ev.list, ev.poll} {
		select {
		case err := <-ch:
			// Both fail together when the server is down: one message is enough.
			if first == nil {
				first = err
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-m.done:
			return ErrStopped
		}
	}
	return first
}

// LoadResult says what a load did.
type LoadResult struct {
	Model   string   `json:"model"`
	Evicted []string `json:"evicted"`
	// Already: the model was loaded before the call; nothing was done.
	Already bool `json:"already"`
	// NumCtx is the context length the model is loaded at: requests on it
	// must use it, or Ollama reloads the model.
	NumCtx int `json:"context_length,omitempty"`
}

// Load makes sure the named model is loaded, evicting others as the policy
// says. Concurrent calls for one model share one load. A model already
// loaded is used at the context length it has; a new load uses the
// model's own (settings, or the largest that fits for "auto").
func (m *Manager) Load(ctx context.Context, name, reason string) (LoadResult, error) {
	return m.LoadAt(ctx, name, 0, reason)
}

// LoadAt is Load at a given context length (0: the model's own); a model
// loaded at another is loaded again.
func (m *Manager) LoadAt(ctx context.Context, name string, numCtx int, reason string) (LoadResult, error) {
	return m.load(ctx, evLoad{name: name, reason: reason, numCtx: numCtx})
}

func (m *Manager) load(ctx context.Context, ev evLoad) (LoadResult, error) {
	name, numCtx := ev.name, ev.numCtx
	if numCtx < 0 || numCtx > MaxContext {
		return LoadResult{Model: name}, fmt.Errorf("context length %d: %w: want 1 to %d tokens, or 0 for the model's own", numCtx, ErrBadSettings, MaxContext)
	}
	w := newWaiter(false)
	ev.w = w
	if err := m.send(ctx, ev); err != nil {
		return LoadResult{Model: name}, err
	}
	r, err := m.await(ctx, w)
	return LoadResult{Model: m.canonical(name), Evicted: r.evicted, Already: r.already, NumCtx: r.numCtx}, err
}

// Acquire loads the model like Load and holds it with a lease: it is not
// evicted until release is called (or the busy grace ends). release may be
// called any number of times; only the first ends the lease. The proxy
// wraps every inference request in Acquire and release.
func (m *Manager) Acquire(ctx context.Context, name, reason string) (release func(), res LoadResult, err error) {
	w := newWaiter(true)
	res.Model = name
	if err := m.send(ctx, evLoad{w: w, name: name, reason: reason}); err != nil {
		return func() {}, res, err
	}
	r, err := m.await(ctx, w)
	res = LoadResult{Model: m.canonical(name), Evicted: r.evicted, Already: r.already, NumCtx: r.numCtx}
	if err != nil {
		return func() {}, res, err
	}
	var once sync.Once
	return func() {
		once.Do(func() { _ = m.send(context.Background(), evRelease{r.lease}) })
	}, res, nil
}

// Unload unloads the named model now (a user's explicit request); it waits
// for requests using the model to end.
func (m *Manager) Unload(ctx context.Context, name string) error {
	w := newWaiter(false)
	if err := m.send(ctx, evUnload{w: w, name: name, reason: "unloaded by request"}); err != nil {
		return err
	}
	_, err := m.await(ctx, w)
	return err
}

// Yield gives the GPU back: every model of ours is unloaded (pinned ones
// too) and remembered; until Restore, loads fail with ErrYielded. It
// returns the models unloaded.
func (m *Manager) Yield(ctx context.Context) ([]string, error) {
	w := newWaiter(false)
	if err := m.send(ctx, evYield{w: w}); err != nil {
		return nil, err
	}
	r, err := m.await(ctx, w)
	return r.evicted, err
}

// Restore loads again what Yield unloaded, at the same context lengths, and
// lets loads run again. It returns the models loaded.
func (m *Manager) Restore(ctx context.Context) ([]string, error) {
	w := newWaiter(false)
	if err := m.send(ctx, evRestore{w: w}); err != nil {
		return nil, err
	}
	r, err := m.await(ctx, w)
	return r.restored, err
}

// canonical resolves a name the way the catalogue does, for results.
func (m *Manager) canonical(name string) string {
	p := m.snap.Load() // as Snapshot().Lookup, without making the snapshot
	if v, ok := p.model(name); ok {
		return v.Name
	}
	if v, ok := p.model(name + ":latest"); ok && !strings.Contains(name, ":") {
		return v.Name
	}
	return name
}

// Lookup finds a model by the name a client gave, as Ollama reads names:
// without a tag, ":latest".
func (s Snapshot) Lookup(name string) (ModelView, bool) {
	if v, ok := s.Model(name); ok {
		return v, true
	}
	if !strings.Contains(name, ":") {
		return s.Model(name + ":latest")
	}
	return ModelView{}, false
}

// Timeline returns the polls and decisions after since (at most the last
// hour); it answers from memory at once.
func (m *Manager) Timeline(_ context.Context, since time.Time) (timeline.Window, error) {
	return m.timeline.Since(since), nil
}

// SetPinned pins a model (never evicted automatically) or unpins it.
func (m *Manager) SetPinned(ctx context.Context, name string, pinned bool) error {
	reply := make(chan error, 1)
	return m.ask(ctx, evPin{name: name, pinned: pinned, reply: reply}, reply)
}

// SetPaused stops (or resumes) automatic evictions. While paused, a load
// that needs room fails with ErrPaused instead of unloading anything.
func (m *Manager) SetPaused(ctx context.Context, paused bool) error {
	reply := make(chan error, 1)
	return m.ask(ctx, evPause{paused: paused, reply: reply}, reply)
}

// Apply changes the running settings the patch names, if the result is
// valid, and leaves the others. Estimates are redone for a new context
// length; models that no longer fit a smaller budget are evicted.
func (m *Manager) Apply(ctx context.Context, p SettingsPatch) error {
	if err := p.Validate(); err != nil {
		return err
	}
	reply := make(chan error, 1)
	return m.ask(ctx, evApply{f: p.ApplyTo, reply: reply}, reply)
}

// Choice is the answer to BestModelForTask.
type Choice struct {
	Model   string   `json:"model"`
	Reason  string   `json:"reason"`
	Evicted []string `json:"evicted"`
	// Bytes is what the model occupies (measured) or is estimated to.
	Bytes    uint64 `json:"bytes"`
	Priority int    `json:"priority"`
	Already  bool   `json:"already_loaded"`
}

type ranking struct {
	gen    int
	ranked []score.Ranked
	// why is the reason a load for the ranking's task and role gives,
	// made once rather than on every call.
	why string
}

// rankings are the rankings made, by task and role, each for the
// catalogue generation it was made at: a caller finds a current one
// without asking the owner.
type rankings struct {
	mu sync.Mutex
	by map[[2]string]ranking
}

func (r *rankings) get(key [2]string, gen int) (ranking, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	hit, ok := r.by[key]
	return hit, ok && hit.gen == gen
}

func (r *rankings) put(key [2]string, rk ranking) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil {
		r.by = map[[2]string]ranking{}
	}
	r.by[key] = rk
}

// Rank returns the installed models that suit task and role, best first,
// each with a one-line reason. It loads nothing.
func (m *Manager) Rank(task, role string) ([]score.Ranked, error) {
	r, err := m.rank(context.Background(), task, role)
	return slices.Clone(r.ranked), err
}

// rank returns the ranking (shared: read only): the one made for the
// catalogue generation the last snapshot shows when there is one, else one
// made now from the owner's candidates, outside the owner.
func (m *Manager) rank(ctx context.Context, task, role string) (ranking, error) {
	key := [2]string{task, role}
	if hit, ok := m.ranks.get(key, m.snap.Load().gen); ok {
		return hit, nil
	}
	var (
		cands  []score.Candidate
		tables score.Tables
		gen    int
	)
	done := make(chan error, 1)
	if err := m.ask(ctx, evRead{func() {
		cands, tables, gen = m.cat.candidates(), m.tune.Tables, m.cat.gen
		done <- nil
	}}, done); err != nil {
		return ranking{}, err
	}
	ranked, err := tables.Rank(cands, task, role)
	if err != nil {
		return ranking{}, err // not cached: unknown names must not grow the cache
	}
	rk := ranking{gen: gen, ranked: ranked, why: "best for " + taskRole(task, role)}
	m.ranks.put(key, rk)
	return rk, nil
}

// BestModelForTask returns the best installed model for task and role that
// fits the budget and loads, loading it (and evicting others) if needed.
// When the best cannot fit, failed to load lately or fails now, the next
// best is taken and the reason says why.
func (m *Manager) BestModelForTask(ctx context.Context, task, role string) (Choice, error) {
	return m.bestModel(ctx, task, role, "")
}

// bestModel is BestModelForTask with why the reason a load gives ("" for
// "best for TASK/ROLE").
func (m *Manager) bestModel(ctx context.Context, task, role, why string) (Choice, error) {
	if !m.snap.Load().head.Discovered {
		if err := m.Refresh(ctx); err != nil {
			return Choice{}, fmt.Errorf("discovering models: %w", err)
		}
	}
	rk, err := m.rank(ctx, task, role)
	if err != nil {
		return Choice{}, err
	}
	ranked, why := rk.ranked, cmp.Or(why, rk.why)
	if len(ranked) == 0 {
		return Choice{}, fmt.Errorf("task %q: %w", task, ErrNoCandidate)
	}
	var skipped []string
	var lastErr error
	for _, r := range ranked {
		p := m.snap.Load()
		v, ok := p.model(r.Name)
		if !ok {
			continue
		}
		if why, err := skip(*v, p.head.Budget, m.now()); why != "" {
			skipped = append(skipped, why)
			lastErr = cmp.Or(err, lastErr)
			continue
		}
		res, err := m.load(ctx, evLoad{name: r.Name, reason: why, task: task})
		switch {
		case err == nil:
			reason := r.Reason
			if len(skipped) > 0 {
				reason += "; chosen over " + strings.Join(skipped, "; ")
			}
			var b uint64
			if after, ok := m.snap.Load().model(r.Name); ok {
				b = after.SizeBytes
				if b == 0 {
					b = after.EstimateBytes
				}
			}
			return Choice{Model: r.Name, Reason: reason, Evicted: res.Evicted, Bytes: b, Priority: r.Priority, Already: res.Already}, nil
		case ctx.Err() == nil && tryNext(err):
			skipped = append(skipped, err.Error())
			lastErr = err
		default:
			return Choice{}, err
		}
	}
	if lastErr == nil {
		lastErr = ErrNeverFits
	}
	return Choice{}, fmt.Errorf("no model for %s fits and loads: %s: %w", taskRole(task, role), strings.Join(skipped, "; "), lastErr)
}

// skip says why a ranked model is not worth a load now ("" when it is):
// it can never fit the budget, or it failed to load lately and its backoff
// has not ended. The error is what to report if no model is left.
func skip(v ModelView, budget uint64, now time.Time) (string, error) {
	switch {
	case v.EstimateBytes > budget:
		return fmt.Sprintf("%s needs %s, over the %s budget", v.Name, fmtBytes(v.EstimateBytes), fmtBytes(budget)), ErrNeverFits
	case v.RetryAt.After(now) && !v.Loaded:
		return fmt.Sprintf("%s failed to load lately (%s)", v.Name, v.Error), ErrLoadFailed
	}
	return "", nil
}

// tryNext reports whether a failed load leaves the next ranked model worth
// trying: this one cannot fit, is gone, or failed; not when the server is
// down, the GPU is given back or the manager stops, which the next model
// would meet as well.
func tryNext(err error) bool {
	return errors.Is(err, ErrNeverFits) || errors.Is(err, evict.ErrNoRoom) || errors.Is(err, ErrModelUnknown) ||
		errors.Is(err, ErrLoadFailed) && !errors.Is(err, ErrYielded) && !errors.Is(err, ErrUnreachable)
}

func taskRole(task, role string) string {
	if role == "" {
		return task
	}
	return task + "/" + role
}
