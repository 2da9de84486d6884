package manager

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// Outcomes: what the server reports (a poll, a read before an op, a load
// or unload done) settles the op that runs and the models' states.

// OnPoll reconciles the card with what the server reports, gives the card
// back when other programs need it and puts models back when they are done.
func (s *scheduler) OnPoll(ps []serving.Running, since uint64) {
	s.reconcile(ps, since)
	s.resumeYield()
	s.shed("")
	s.giveBack()
	s.restoreReleased()
	s.pump()
}

// reconcile takes the server's list of loaded models as the truth: models
// loaded by other clients are adopted (their bytes count), and models that
// vanished without an unload of ours were dropped by the server itself
// (ollama stop, another client, its own eviction, a restart): their leases
// protect nothing any more. A poll runs beside the loads and unloads, so
// its list may predate one that ended while it was read: models whose state
// changed after it began (since, the transition count then) are left to
// the next poll; the reads of a load or unload, made in turn, pass
// fresh.
func (s *scheduler) reconcile(ps []serving.Running, since uint64) {
	running := map[string]serving.Running{}
	for _, r := range ps {
		running[r.Name] = r
	}
	for name, r := range running {
		if s.cat.track(name, r.Digest) {
			s.fx.Discover() // loaded but not (yet) listed: its bytes count meanwhile
		}
		sl := s.slotOf(name)
		if sl.changed > since {
			continue
		}
		size, onGPU := r.VRAMBytes, r.VRAMBytes > 0
		if size == 0 {
			size = r.SizeBytes
		}
		if sl.size != size || sl.onGPU != onGPU {
			sl.size, sl.onGPU = size, onGPU
			s.fx.Changed(name)
		}
		if sl.state == Idle || sl.state == Failed {
			s.transition(name, Loaded)
			sl.loadedCtx, sl.adopted = r.ContextLength, true
			s.fx.Emit(Event{Kind: EventLoaded, Model: name, Bytes: sl.size, Reason: reasonAdopted})
		}
	}
	for name, sl := range s.active {
		if _, ok := running[name]; ok || sl.state != Loaded || sl.changed > since {
			continue
		}
		if s.cur != nil && s.cur.name == name {
			continue // ours to settle
		}
		s.transition(name, Idle)
		size := sl.size
		sl.size, sl.loadedCtx = 0, 0
		lost := 0
		for _, l := range s.leases {
			if l.model == name && !l.lost {
				l.lost = true
				lost++
			}
		}
		reason := fmt.Sprintf("Ollama unloaded %s on its own (ollama stop, another client, its own eviction or a restart)", name)
		if lost > 0 {
			reason += fmt.Sprintf("; %d request(s) were using it", lost)
		}
		s.fx.Emit(Event{Kind: EventUnloadedByOllama, Model: name, Bytes: size, Reason: reason})
	}
}

// fresh marks a list of loaded models read in turn with the loads and
// unloads (before one, or after one ended), never older than a state.
const fresh = ^uint64(0)

// loading reports whether ps lists name as still loading (newer servers
// list a model while they load it, sized as its file).
func loading(ps []serving.Running, name string) bool {
	for _, r := range ps {
		if r.Name == name {
			return r.Loading
		}
	}
	return false
}

// OnRefreshed is the server read again before op: err means it did not
// answer, and the op fails.
func (s *scheduler) OnRefreshed(id uint64, ps []serving.Running, err error) {
	if err == nil {
		s.reconcile(ps, fresh)
	}
	o := s.cur
	if o == nil || o.id != id {
		s.pump()
		return
	}
	s.setCur(nil)
	if err != nil {
		s.fail(o, fmt.Errorf("reading what %s has loaded before %sing %s: %w", "Ollama", o.kind(), o.name, err))
	} else {
		o.refreshed = true
		s.queue = append([]*op{o}, s.queue...)
	}
	s.shed("")
	s.pump()
}

// OnUnloaded is the outcome of an unload step.
func (s *scheduler) OnUnloaded(id uint64, name string, err error, took time.Duration) {
	o := s.cur
	if o == nil || o.id != id {
		return
	}
	sl := s.slots[name]
	if o.kind() == opUnload {
		s.setCur(nil)
		s.unloaded(o, name, sl, err, took)
		s.pump()
		return
	}
	if name == o.name { // the model itself, off the GPU again (gpu_only)
		s.respilled(o, sl, err)
		return
	}
	v := o.victims[o.step]
	if err != nil {
		// The rest stay; the victim's state comes from the next poll.
		for _, r := range o.victims[o.step:] {
			s.transition(r.Name, Loaded)
		}
		s.setCur(nil)
		s.transition(o.name, Idle)
		err = fmt.Errorf("making room for %s: unloading %s: %w", o.name, name, err)
		s.fx.Emit(Event{Kind: EventLoadFailed, Model: o.name, Reason: o.reason, Error: err.Error()})
		s.answerAll(o, result{evicted: o.evicted, err: errors.Join(err, ErrLoadFailed)})
		s.putBackVictims(o)
		s.pump()
		return
	}
	if sl != nil {
		s.transition(name, Idle)
		sl.size, sl.loadedCtx = 0, 0
	}
	s.clock = s.tune.policy.Evicted(v, s.clock)
	o.evicted = append(o.evicted, name)
	s.fx.Emit(Event{Kind: EventEvicted, Model: name, For: o.name, Bytes: v.Bytes, Duration: took,
		Reason: fmt.Sprintf("unloaded %s (%s) to make room for %s (%s)", name, fmtBytes(v.Bytes), o.name, fmtBytes(o.need))})
	o.step++
	s.next(o)
}

// unloaded settles an unload op.
func (s *scheduler) unloaded(o *op, name string, sl *slot, err error, took time.Duration) {
	if sl == nil {
		s.answerAll(o, result{err: err})
		return
	}
	if err != nil {
		s.transition(name, Loaded)
		if o.why == yield {
			s.dropYielded(name) // still on the card: nothing to put back
		}
		s.answerAll(o, result{err: fmt.Errorf("unloading %s: %w", name, err)})
		return
	}
	s.transition(name, Idle)
	size, ctx := sl.size, sl.loadedCtx
	sl.size, sl.loadedCtx, sl.cpuShare = 0, 0, 0
	kind := EventUnloaded
	switch {
	case o.why == yield:
		kind = EventYielded // recorded to be restored before it began
	case o.yields():
		kind = EventYielded
		if s.now().Sub(sl.lastUsed) <= recentUse {
			s.yielded = append(s.yielded, yielded{Name: name, NumCtx: ctx, Bytes: size, LastUsed: sl.lastUsed})
			s.fx.Changed("")
		}
	case o.why == shed:
		kind = EventEvicted
	}
	s.fx.Emit(Event{Kind: kind, Model: name, Reason: o.reason, Bytes: size, Duration: took})
	s.answerAll(o, result{})
	s.persist()
}

// OnLoaded is the outcome of a load step; ps is /api/ps read right after a
// successful one.
func (s *scheduler) OnLoaded(id uint64, ps []serving.Running, err error, took time.Duration) {
	o := s.cur
	if o == nil || o.id != id {
		return
	}
	s.setCur(nil)
	md, ok := s.find(o.name)
	if !ok { // forgotten while it loaded; the listing will tell
		s.answerAll(o, result{evicted: o.evicted, err: err})
		s.pump()
		return
	}
	if err != nil {
		s.loadFailed(o, md, err, took)
		return
	}
	s.transition(md.name, Loaded)
	md.loadedCtx, md.adopted = o.numCtx, false
	s.reconcile(ps, fresh)
	md.cpuShare = s.cpuShare(ps, md.name)
	if md.cpuShare > 0 && s.tune.GPUOnly && md.state == Loaded {
		s.spill(o, md)
		return
	}
	delete(s.failed, keyOf(md.spec, o.numCtx))
	md.lastErr = ""
	s.touch(md)
	if md.state == Loaded && md.size > 0 && !loading(ps, md.name) {
		s.cat.calibrate(md.name, o.numCtx, md.size)
	}
	s.loaded(o, md, took)
	s.answer(o, md, result{evicted: o.evicted})
	s.persist()
	s.shed("")
	s.pump()
}

// loaded records a load that succeeded: loaded, or restored, and said so
// when Ollama put part of it on the CPU.
func (s *scheduler) loaded(o *op, md target, took time.Duration) {
	reason := o.reason
	if o.spilled != "" {
		reason = fmt.Sprintf("%s; loaded at %d tokens instead of %d: %s", reason, o.numCtx, o.asked, o.spilled)
	}
	kind := EventLoaded
	if o.why == restore {
		kind = EventRestored
	}
	s.fx.Emit(Event{Kind: kind, Model: o.name, Reason: reason, Bytes: md.size, Duration: took})
	if md.cpuShare > 0 {
		s.fx.Emit(Event{Kind: EventSpilled, Model: o.name, Bytes: md.size,
			Reason: fmt.Sprintf("%s is %.0f %% on the CPU: Ollama could not fit it on the GPU, so it answers several times slower (set gpu_only to refuse that)", o.name, 100*md.cpuShare)})
	}
}

// loadFailed settles a load that failed: remembered for the backoff
// (unless the server went away or it was a put-back), the callers told,
// and the models it evicted put back.
func (s *scheduler) loadFailed(o *op, md target, err error, took time.Duration) {
	s.transition(md.name, Failed)
	if s.handedBack {
		s.dropYielded(md.name) // a yield waited for it; it never came on
	}
	// A server that went away (stopped, killed, restarting) is not the
	// model's failure: once it is back, the model may be tried. Nor is
	// a put-back that failed (a model that loaded before, on a busy
	// machine): a request for it must not be refused for that.
	if errors.Is(err, ErrUnreachable) || o.gentle() {
		md.lastErr = err.Error()
	} else {
		s.remember(md, o.numCtx, err)
	}
	s.fx.Emit(Event{Kind: EventLoadFailed, Model: o.name, Reason: o.reason, Duration: took, Error: err.Error()})
	switch {
	case errors.Is(err, ErrModelUnknown):
		// Deleted while we were loading it: forget it and look again.
		s.cat.forget(md.name)
		delete(s.slots, md.name)
		s.fx.Discover()
	case errors.Is(err, ErrTimedOut):
		s.fx.Abandon(md.name)
	}
	s.answerAll(o, result{evicted: o.evicted, err: fmt.Errorf("loading %s: %w", o.name, errors.Join(err, ErrLoadFailed))})
	s.putBackVictims(o)
	s.persist()
	s.pump()
}

// spill handles a load Ollama put partly on the CPU under gpu_only: the
// model is unloaded again and loaded at half the context, down to
// minAutoCtx; below that the load fails and the model stays off the card.
func (s *scheduler) spill(o *op, md target) {
	why := fmt.Sprintf("at %d tokens %.0f %% of it was on the CPU", o.numCtx, 100*md.cpuShare)
	if o.spilled == "" {
		o.spilled = why
	}
	if next := o.numCtx / 2; next >= min(minAutoCtx, o.asked) && next < o.numCtx {
		o.numCtx = next
	} else {
		o.failAfter = fmt.Errorf("%s does not fit on the GPU (%s) and gpu_only keeps it off the CPU: %w", o.name, why, ErrSpilled)
	}
	s.setCur(o)
	s.transition(md.name, Unloading)
	s.fx.Unload(o.id, md.name, s.unloadWithin())
}

// respilled continues a gpu_only retry once the model is off the card.
func (s *scheduler) respilled(o *op, sl *slot, err error) {
	if err != nil {
		s.transition(o.name, Loaded) // still there; the next poll tells more
		s.setCur(nil)
		s.answerAll(o, result{evicted: o.evicted, err: fmt.Errorf("unloading %s after it spilled to the CPU: %w", o.name, err)})
		s.pump()
		return
	}
	s.transition(o.name, Idle)
	sl.size, sl.loadedCtx, sl.cpuShare = 0, 0, 0
	if o.failAfter != nil {
		s.setCur(nil)
		if md, ok := s.find(o.name); ok {
			s.remember(md, o.asked, o.failAfter)
		}
		s.persist()
		s.fx.Emit(Event{Kind: EventLoadFailed, Model: o.name, Reason: o.reason, Error: o.failAfter.Error()})
		s.answerAll(o, result{evicted: o.evicted, err: errors.Join(o.failAfter, ErrLoadFailed)})
		s.putBackVictims(o)
		s.pump()
		return
	}
	s.transition(o.name, Loading)
	s.next(o)
}

// cpuShare is the part of name Ollama put on the CPU, when a GPU is there
// (the driver answers, or Ollama reports VRAM for some model): with no GPU
// Ollama runs on the CPU by design, and nothing is flagged.
func (s *scheduler) cpuShare(ps []serving.Running, name string) float64 {
	gpu := s.card.reading().Measured()
	var r serving.Running
	for _, x := range ps {
		gpu = gpu || x.VRAMBytes > 0
		if x.Name == name {
			r = x
		}
	}
	if !gpu || r.SizeBytes == 0 || r.VRAMBytes >= r.SizeBytes {
		return 0
	}
	return float64(r.SizeBytes-r.VRAMBytes) / float64(r.SizeBytes)
}

// putBackVictims puts back the models a failed load evicted that were in
// use lately, so a failure leaves the card as it found it.
func (s *scheduler) putBackVictims(o *op) {
	for _, v := range o.victims {
		if !slices.Contains(o.evicted, v.Name) || s.now().Sub(v.LastUsed) > recentUse {
			continue
		}
		if _, ok := s.cat.spec(v.Name); !ok {
			continue
		}
		s.enqueue(&op{why: putBack, name: v.Name, numCtx: s.slotOf(v.Name).loadedCtx,
			reason: fmt.Sprintf("put back: %s failed to load", o.name)})
	}
}
