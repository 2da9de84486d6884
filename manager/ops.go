package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/evict"
)

type opKind int

const (
	opLoad opKind = iota
	opUnload
)

// op is one load or unload, queued until the owner can run it. Callers
// asking for the same load join its waiters, so it runs once.
type op struct {
	kind    opKind
	name    string
	reason  string
	waiters []*waiter
	// refreshed: /api/ps was read again after the op reached the front,
	// so the plan works from what the server holds now.
	refreshed bool
	victims   []evict.Entry
	start     time.Time
}

// waiter is one caller of an op. acquire asks for an in-flight slot on the
// model when the load succeeds, taken inside the owner so no eviction can
// slip in between.
type waiter struct {
	reply   chan opResult
	acquire bool
}

type opResult struct {
	evicted  []string
	already  bool // it was loaded; nothing was done
	acquired bool
	err      error
}

// enqueue adds w to the op for (kind, name), creating it when none is
// pending.
func (m *Manager) enqueue(kind opKind, name, reason string, w *waiter) {
	s := &m.st
	if s.current != nil && s.current.kind == kind && s.current.name == name {
		s.current.waiters = append(s.current.waiters, w)
		return
	}
	for _, o := range s.queue {
		if o.kind == kind && o.name == name {
			o.waiters = append(o.waiters, w)
			return
		}
	}
	s.queue = append(s.queue, &op{kind: kind, name: name, reason: reason, waiters: []*waiter{w}})
}

// drop removes a waiter that gave up. If it was already answered with an
// in-flight slot, the slot is released so the model does not stay busy.
func (m *Manager) drop(w *waiter, name string) {
	m.st.quiet = true
	select {
	case r := <-w.reply:
		if r.acquired {
			m.releaseLocked(name)
		}
		return
	default:
	}
	s := &m.st
	for _, o := range append([]*op{s.current}, s.queue...) {
		if o == nil {
			continue
		}
		o.waiters = slices.DeleteFunc(o.waiters, func(x *waiter) bool { return x == w })
	}
	// A queued op nobody waits for any more is not worth running.
	s.queue = slices.DeleteFunc(s.queue, func(o *op) bool { return len(o.waiters) == 0 })
}

func (m *Manager) releaseLocked(name string) {
	m.st.quiet, m.st.usageDirty = true, true
	if md := m.st.lookup(name); md != nil && md.inflight > 0 {
		md.inflight--
		if md.inflight == 0 {
			md.busySince = time.Time{}
		}
	}
}

// finish answers every waiter of o.
func (m *Manager) finish(o *op, r opResult) {
	md := m.st.lookup(o.name)
	for _, w := range o.waiters {
		rr := r
		if r.err == nil && w.acquire && md != nil && md.state == Loaded {
			if md.inflight == 0 {
				md.busySince = m.now()
			}
			md.inflight++
			rr.acquired = true
		}
		m.reply(w, rr)
	}
	if m.st.current == o {
		m.st.current = nil
	}
}

// failAll answers every pending caller with err (the manager is stopping).
func (m *Manager) failAll(err error) {
	s := &m.st
	for _, o := range append([]*op{s.current}, s.queue...) {
		if o != nil {
			for _, w := range o.waiters {
				w.reply <- opResult{err: err} // stopping: no snapshot to wait for
			}
			o.waiters = nil
		}
	}
	s.queue, s.current = nil, nil
}

// pump starts the first queued op that can run now. One op runs at a time:
// loads and unloads never overlap, so the plan always sees settled state.
// It reports whether it changed anything a snapshot shows.
func (m *Manager) pump() (changed bool) {
	s := &m.st
	for s.current == nil && s.spawn != nil {
		i, act := 0, actWait
		for i = range s.queue {
			if act = m.prepare(s.queue[i]); act != actWait {
				break
			}
		}
		if act == actWait {
			return changed // empty, or every op waits for busy or pinned models
		}
		o := s.queue[i]
		s.queue = slices.Delete(s.queue, i, i+1)
		if act == actDone {
			continue
		}
		changed = true
		s.current = o
		o.start = m.now()
		if o.refreshed {
			m.execute(o)
		} else {
			m.refreshThen(o)
		}
	}
	return changed
}

type action int

const (
	actWait  action = iota // leave queued
	actStart               // run it now
	actDone                // answered already; drop it
)

func (m *Manager) failOp(o *op, err error) {
	if o.kind == opLoad {
		m.emit(Event{Kind: EventLoadFailed, Model: o.name, Reason: o.reason, Error: err.Error()})
	}
	m.finish(o, opResult{err: err})
}

// prepare decides what to do with a queued op now; it answers the op's
// callers itself when there is nothing to do or it cannot succeed.
func (m *Manager) prepare(o *op) action {
	s := &m.st
	md := s.lookup(o.name)
	if md == nil && !s.discovered {
		if s.discovering {
			return actWait // the first listing is on its way
		}
		err := s.discoverErr
		if !errors.Is(err, ErrUnreachable) {
			err = errors.Join(err, ErrUnreachable)
		}
		m.failOp(o, fmt.Errorf("cannot list models: %w", err))
		return actDone
	}
	if md == nil {
		m.failOp(o, fmt.Errorf("%s: %w", o.name, ErrModelUnknown))
		return actDone
	}
	o.name = md.inst.Name
	if o.kind == opUnload {
		if !o.refreshed {
			return actStart // read /api/ps first: another client may have loaded it
		}
		if md.state != Loaded {
			m.finish(o, opResult{already: true})
			return actDone
		}
		if s.busy(md, m.now()) {
			o.refreshed = false
			return actWait // never pull a model from under a running request
		}
		return actStart
	}
	if md.state == Loaded && md.loadedCtx == md.numCtx {
		s.touch(md, m.now())
		m.finish(o, opResult{already: true})
		return actDone
	}
	if !md.hasDetails {
		m.failOp(o, fmt.Errorf("%s: no details from the server: %w", o.name, errors.Join(md.showErr, ErrLoadFailed)))
		return actDone
	}
	if _, calibrated := s.need(md); md.estErr != nil && !calibrated {
		m.failOp(o, fmt.Errorf("%s: cannot estimate its size, so it cannot be placed safely: %w", o.name, md.estErr))
		return actDone
	}
	if !o.refreshed {
		return actStart // plan once /api/ps has been read again
	}
	need, _ := s.need(md)
	// A model loaded at another context length is replaced by this load
	// (Ollama unloads the old instance), so its bytes do not count twice.
	loaded := slices.DeleteFunc(s.entries(m.now()), func(e evict.Entry) bool { return e.Name == md.inst.Name })
	lim := s.limits()
	if md.state == Loaded && lim.HasDevice {
		lim.DeviceRoom += md.size
	}
	victims, err := evict.Plan(loaded, need, lim, s.policy)
	switch {
	case errors.Is(err, evict.ErrBlocked):
		o.refreshed = false // read the server again when it can go
		return actWait
	case err != nil:
		m.failOp(o, fmt.Errorf("%s needs %s, budget %s: %w", o.name, fmtBytes(need), fmtBytes(s.budget()), err))
		return actDone
	case len(victims) > 0 && s.paused:
		m.failOp(o, fmt.Errorf("%s needs %s evicted to fit: %w", o.name, strings.Join(names(victims), ", "), ErrPaused))
		return actDone
	}
	o.victims = victims
	return actStart
}

func names(es []evict.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name
	}
	return out
}

// refreshThen reads /api/ps and the driver again before acting on o: a
// snapshot is advice, and another client may have changed the server.
func (m *Manager) refreshThen(o *op) {
	m.st.spawn(func(ctx context.Context) {
		ps, psErr := m.rt.Running(ctx)
		v, gErr := m.gpu.Read(ctx)
		m.report(func() {
			m.applyPoll(ps, psErr, v, gErr)
			if m.st.current != o {
				return
			}
			m.st.current = nil
			if psErr != nil {
				m.failOp(o, psErr)
				return
			}
			o.refreshed = true
			m.st.queue = append([]*op{o}, m.st.queue...)
		})
	})
}

// execute runs o's I/O outside the owner and reports back.
func (m *Manager) execute(o *op) {
	s := &m.st
	md := s.lookup(o.name)
	rt := m.rt
	switch o.kind {
	case opUnload:
		m.mustTransition(md, Unloading)
		name := md.inst.Name
		s.spawn(func(ctx context.Context) {
			err := rt.Unload(ctx, name)
			m.report(func() { m.unloaded(o, md, err) })
		})
		return
	}
	for _, v := range o.victims {
		m.mustTransition(s.models[v.Name], Unloading)
	}
	m.mustTransition(md, Loading)
	req := LoadRequest{Name: md.inst.Name, NumCtx: md.numCtx, Embedding: isEmbedding(md.det.Capabilities)}
	need, _ := s.need(md)
	m.emit(Event{Kind: EventLoadStarted, Model: req.Name, Reason: o.reason, Bytes: need})
	victims := o.victims
	s.spawn(func(ctx context.Context) {
		res := make([]unloadResult, len(victims))
		var failed error
		for i, v := range victims {
			t := time.Now()
			res[i] = unloadResult{tried: true, err: rt.Unload(ctx, v.Name)}
			res[i].dur = time.Since(t)
			if failed = res[i].err; failed != nil {
				break
			}
		}
		var loadErr error
		var ps []Running
		t := time.Now()
		if failed == nil {
			if loadErr = rt.Load(ctx, req); loadErr == nil {
				ps, loadErr = rt.Running(ctx)
			}
		}
		dur := time.Since(t)
		m.report(func() {
			evicted := m.evicted(victims, res, req.Name, need)
			if failed != nil {
				m.mustTransition(md, Idle)
				m.emit(Event{Kind: EventLoadFailed, Model: req.Name, Reason: o.reason, Error: "making room: " + failed.Error()})
				m.finish(o, opResult{evicted: evicted, err: fmt.Errorf("making room for %s: %w", req.Name, failed)})
				return
			}
			m.loaded(o, md, req, ps, loadErr, dur, evicted)
		})
	})
}

type unloadResult struct {
	tried bool
	err   error
	dur   time.Duration
}

// evicted settles the victims of a load and announces each eviction.
func (m *Manager) evicted(victims []evict.Entry, res []unloadResult, forName string, need uint64) []string {
	var out []string
	for i, v := range victims {
		vm := m.st.models[v.Name]
		if vm == nil {
			continue
		}
		if !res[i].tried || res[i].err != nil {
			m.mustTransition(vm, Loaded)
			continue
		}
		m.mustTransition(vm, Idle)
		vm.size, vm.loadedCtx = 0, 0
		m.st.clock = m.st.policy.Evicted(v, m.st.clock)
		out = append(out, v.Name)
		m.emit(Event{Kind: EventEvicted, Model: v.Name, For: forName, Bytes: v.Bytes, Duration: res[i].dur,
			Reason: fmt.Sprintf("unloaded %s (%s) to make room for %s (%s)", v.Name, fmtBytes(v.Bytes), forName, fmtBytes(need))})
	}
	return out
}

// loaded records the outcome of a load.
func (m *Manager) loaded(o *op, md *model, req LoadRequest, ps []Running, err error, dur time.Duration, evicted []string) {
	s := &m.st
	if err != nil {
		md.lastErr = err.Error()
		m.mustTransition(md, Failed)
		m.emit(Event{Kind: EventLoadFailed, Model: req.Name, Reason: o.reason, Duration: dur, Error: err.Error()})
		if errors.Is(err, ErrModelUnknown) {
			// Deleted while we were loading it: forget it and look again.
			delete(s.models, md.inst.Name)
			s.gen++
			m.startDiscovery()
		}
		m.finish(o, opResult{evicted: evicted, err: fmt.Errorf("loading %s: %w", req.Name, errors.Join(err, ErrLoadFailed))})
		m.savePersisted()
		return
	}
	md.lastErr = ""
	m.mustTransition(md, Loaded)
	md.loadedCtx = req.NumCtx
	s.touch(md, m.now())
	m.applyRunning(ps)
	if md.state == Loaded && md.size > 0 {
		s.calib[calibKey(md.inst.Digest, req.NumCtx)] = md.size
	}
	m.emit(Event{Kind: EventLoaded, Model: req.Name, Reason: o.reason, Bytes: md.size, Duration: dur})
	m.finish(o, opResult{evicted: evicted})
	m.savePersisted()
}

func (m *Manager) unloaded(o *op, md *model, err error) {
	if err != nil {
		m.mustTransition(md, Loaded)
		m.finish(o, opResult{err: fmt.Errorf("unloading %s: %w", md.inst.Name, err)})
		return
	}
	m.mustTransition(md, Idle)
	size := md.size
	md.size, md.loadedCtx = 0, 0
	m.emit(Event{Kind: EventUnloaded, Model: md.inst.Name, Reason: o.reason, Bytes: size, Duration: m.now().Sub(o.start)})
	m.finish(o, opResult{})
	m.savePersisted()
}

// mustTransition applies a transition; an invalid one is a bug, logged
// loudly but not fatal, so the app keeps running.
func (m *Manager) mustTransition(md *model, to State) {
	if md == nil {
		return
	}
	if err := md.transition(to); err != nil {
		m.log.Error("state machine", "err", err)
		md.state = to
	}
}

func isEmbedding(caps []string) bool {
	return slices.Contains(caps, "embedding") && !slices.Contains(caps, "completion")
}
