package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/score"
)

// Refresh lists the installed models and reads the server and the card
// now, and waits for both.
func (m *Manager) Refresh(ctx context.Context) error {
	disc, poll := make(chan error, 1), make(chan error, 1)
	if err := m.do(ctx, func() {
		m.st.discoverWaiters = append(m.st.discoverWaiters, disc)
		m.st.pollWaiters = append(m.st.pollWaiters, poll)
		m.startDiscovery()
		m.startPoll()
	}); err != nil {
		return err
	}
	var first error
	for _, ch := range []chan error{disc, poll} {
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
}

// Load makes sure the named model is loaded, evicting others as the policy
// says. Concurrent calls for one model share one load.
func (m *Manager) Load(ctx context.Context, name, reason string) (LoadResult, error) {
	r, err := m.run(ctx, opLoad, name, reason, false)
	return LoadResult{Model: m.canonical(name), Evicted: r.evicted, Already: r.already}, err
}

// Acquire loads the model like Load and holds it: it is not evicted until
// release is called (or the busy grace ends). The proxy wraps every
// inference request in Acquire/release.
func (m *Manager) Acquire(ctx context.Context, name, reason string) (release func(), res LoadResult, err error) {
	name = m.canonical(name)
	r, err := m.run(ctx, opLoad, name, reason, true)
	res = LoadResult{Model: name, Evicted: r.evicted, Already: r.already}
	if err != nil {
		return func() {}, res, err
	}
	if !r.acquired {
		// Loaded already (no op ran): take the slot in the owner now.
		err = m.do(ctx, func() {
			m.st.quiet, m.st.usageDirty = true, true
			if md := m.st.lookup(name); md != nil && md.state == Loaded {
				if md.inflight == 0 {
					md.busySince = m.now()
				}
				md.inflight++
				r.acquired = true
			}
		})
		if err != nil || !r.acquired {
			if err == nil {
				err = fmt.Errorf("%s was unloaded before it could be used: %w", name, ErrLoadFailed)
			}
			return func() {}, res, err
		}
	}
	released := false
	return func() {
		if released {
			return
		}
		released = true
		m.report(func() { m.releaseLocked(name) })
	}, res, nil
}

// Unload unloads the named model now (a user's explicit request).
func (m *Manager) Unload(ctx context.Context, name string) error {
	_, err := m.run(ctx, opUnload, name, "unloaded by request", false)
	return err
}

func (m *Manager) run(ctx context.Context, kind opKind, name, reason string, acquire bool) (opResult, error) {
	w := &waiter{reply: make(chan opResult, 1), acquire: acquire}
	var unknown bool
	if err := m.do(ctx, func() {
		m.st.quiet = true // queuing shows nothing; pump reports what it starts
		if m.st.discovered && m.st.lookup(name) == nil {
			unknown = true
			return
		}
		m.enqueue(kind, name, reason, w)
	}); err != nil {
		return opResult{}, err
	}
	if unknown {
		return opResult{}, m.unknownModel(name)
	}
	select {
	case r := <-w.reply:
		return r, r.err
	case <-ctx.Done():
		// Give up our place; the op itself goes on for any other waiter.
		_ = m.do(context.Background(), func() { m.drop(w, name) })
		return opResult{}, ctx.Err()
	}
}

func (m *Manager) unknownModel(name string) error {
	var known []string
	for _, v := range m.Snapshot().Models {
		known = append(known, v.Name)
	}
	hint := "none installed"
	if len(known) > 0 {
		if len(known) > 8 {
			known = append(known[:8], "...")
		}
		hint = "installed: " + strings.Join(known, ", ")
	}
	return fmt.Errorf("%q (%s): %w", name, hint, ErrModelUnknown)
}

// canonical resolves a name the way lookup does, for results.
func (m *Manager) canonical(name string) string {
	s := m.Snapshot()
	if _, ok := s.Model(name); ok || strings.Contains(name, ":") {
		return name
	}
	if _, ok := s.Model(name + ":latest"); ok {
		return name + ":latest"
	}
	return name
}

// SetPinned pins a model (never evicted automatically) or unpins it.
func (m *Manager) SetPinned(ctx context.Context, name string, pinned bool) error {
	var err error
	if e := m.do(ctx, func() {
		md := m.st.lookup(name)
		if md == nil {
			err = fmt.Errorf("%q: %w", name, ErrModelUnknown)
			return
		}
		md.pinned = pinned
		m.st.set.Pinned = slices.DeleteFunc(m.st.set.Pinned, func(n string) bool { return n == md.inst.Name })
		if pinned {
			m.st.set.Pinned = append(m.st.set.Pinned, md.inst.Name)
		}
	}); e != nil {
		return e
	}
	return err
}

// SetPaused stops (or resumes) automatic evictions. While paused, a load
// that needs room fails with ErrPaused instead of unloading anything.
func (m *Manager) SetPaused(ctx context.Context, paused bool) error {
	return m.do(ctx, func() { m.st.paused = paused })
}

// Apply changes the running settings: f edits a copy of the current ones,
// which replace them if they are valid. Estimates are redone for a new
// context length; loaded models stay until the policy evicts them.
func (m *Manager) Apply(ctx context.Context, f func(*Settings)) error {
	var err error
	if e := m.do(ctx, func() {
		next := m.st.set
		next.Pinned = slices.Clone(next.Pinned)
		f(&next)
		var p evict.Policy
		if next, p, err = next.withDefaults(); err != nil {
			return
		}
		m.st.set, m.st.policy = next, p
		for _, md := range m.st.models {
			m.st.evaluate(md)
		}
	}); e != nil {
		return e
	}
	return err
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

// Rank returns the installed models that suit task and role, best first,
// each with a one-line reason. It loads nothing.
func (m *Manager) Rank(task, role string) ([]score.Ranked, error) {
	r, err := m.rank(task, role)
	return slices.Clone(r), err
}

// rank returns the cached ranking (shared: read only), computing it outside
// the owner when the catalogue or the tables changed since.
func (m *Manager) rank(task, role string) ([]score.Ranked, error) {
	key := [2]string{task, role}
	var (
		hit    ranking
		cached bool
		cands  []score.Candidate
		tables score.Tables
		gen    int
	)
	if err := m.do(context.Background(), func() {
		m.st.quiet = true
		hit, cached = m.st.ranks[key]
		if cached = cached && hit.gen == m.st.gen; !cached {
			cands, tables, gen = m.st.candidates(), m.st.set.Tables, m.st.gen
		}
	}); err != nil {
		return nil, err
	}
	if cached {
		return hit.ranked, nil
	}
	ranked, err := tables.Rank(cands, task, role)
	if err != nil {
		return nil, err // not cached: unknown names must not grow the cache
	}
	_ = m.do(context.Background(), func() {
		m.st.quiet = true
		if m.st.ranks == nil {
			m.st.ranks = map[[2]string]ranking{}
		}
		m.st.ranks[key] = ranking{gen: gen, ranked: ranked}
	})
	return ranked, nil
}

// BestModelForTask returns the best installed model for task and role that
// fits the budget, loading it (and evicting others) if needed. When the best
// cannot fit, the next best is taken and the reason says why.
func (m *Manager) BestModelForTask(ctx context.Context, task, role string) (Choice, error) {
	if !m.Snapshot().Discovered {
		if err := m.Refresh(ctx); err != nil {
			return Choice{}, fmt.Errorf("discovering models: %w", err)
		}
	}
	ranked, err := m.rank(task, role)
	if err != nil {
		return Choice{}, err
	}
	if len(ranked) == 0 {
		return Choice{}, fmt.Errorf("task %q: %w", task, ErrNoCandidate)
	}
	var skipped []string
	var lastErr error
	for _, r := range ranked {
		snap := m.Snapshot()
		v, ok := snap.Model(r.Name)
		if !ok {
			continue
		}
		if v.EstimateBytes > snap.Budget {
			skipped = append(skipped, fmt.Sprintf("%s needs %s, over the %s budget", r.Name, fmtBytes(v.EstimateBytes), fmtBytes(snap.Budget)))
			continue
		}
		res, err := m.Load(ctx, r.Name, fmt.Sprintf("best for %s", taskRole(task, role)))
		switch {
		case err == nil:
			reason := r.Reason
			if len(skipped) > 0 {
				reason += "; chosen over " + strings.Join(skipped, "; ")
			}
			after, _ := m.Snapshot().Model(r.Name)
			b := after.SizeBytes
			if b == 0 {
				b = after.EstimateBytes
			}
			return Choice{Model: r.Name, Reason: reason, Evicted: res.Evicted, Bytes: b, Priority: r.Priority, Already: res.Already}, nil
		case errors.Is(err, ErrNeverFits), errors.Is(err, evict.ErrNoRoom), errors.Is(err, ErrModelUnknown):
			skipped = append(skipped, err.Error())
			lastErr = err
		default:
			return Choice{}, err
		}
	}
	if lastErr == nil {
		lastErr = ErrNeverFits
	}
	return Choice{}, fmt.Errorf("no model for %s fits: %s: %w", taskRole(task, role), strings.Join(skipped, "; "), lastErr)
}

func taskRole(task, role string) string {
	if role == "" {
		return task
	}
	return task + "/" + role
}
