package manager

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// Queue and admission: requests become ops, equal ones join, and the
// first op that can run is prepared (checked, planned) and started.

// unloadWithin is an unload's deadline: a minute, or the configured
// load_timeout when that is shorter (one knob bounds every op; a longer
// one is for slow disks, which unloads do not read).
func (s *scheduler) unloadWithin() time.Duration {
	if t := s.tune.LoadTimeout; t > 0 && t < unloadDeadline {
		return t
	}
	return unloadDeadline
}

// loadDeadline is how long a load of need bytes may take before it is
// given up: a minute for the runner to start plus the bytes read at
// 25 MB/s (a USB 2 disk or a slow network share), at least two minutes. A
// local SSD reads a 5 GB model in seconds, so only a wedged server hits it.
func loadDeadline(need uint64, configured time.Duration) time.Duration {
	if configured > 0 {
		return configured
	}
	return max(2*time.Minute, time.Minute+time.Duration(need/25e6)*time.Second)
}

// OnLoad asks for name to be loaded (at numCtx, 0 for the model's own).
func (s *scheduler) OnLoad(w *waiter, name, reason string, numCtx int) {
	if s.handedBack {
		s.fx.Reply(w, result{err: fmt.Errorf("not loading %s: %w", name, ErrYielded)})
		return
	}
	md, ok := s.find(name)
	if listed, _, _ := s.cat.listState(); !ok && listed {
		s.fx.Reply(w, result{err: s.cat.unknown(name)})
		return
	}
	if ok {
		name = md.name
		if s.hit(md, numCtx) {
			s.touch(md)
			s.fx.Reply(w, s.grant(w, md, result{already: true, numCtx: md.loadedCtx}))
			return
		}
		if err := s.backingOff(md.spec, s.ctxFor(md, numCtx)); err != nil {
			s.fx.Reply(w, result{err: err})
			return
		}
	}
	s.enqueue(&op{why: loadRequested, name: name, numCtx: numCtx, reason: reason, waiters: []*waiter{w}})
}

// OnUnload asks for name to be unloaded.
func (s *scheduler) OnUnload(w *waiter, name, reason string) {
	if sp, ok := s.cat.spec(name); ok {
		name = sp.name
	} else if listed, _, _ := s.cat.listState(); listed {
		s.fx.Reply(w, result{err: s.cat.unknown(name)})
		return
	}
	s.enqueue(&op{why: unloadRequested, name: name, reason: reason, waiters: []*waiter{w}})
}

// enqueue joins o to an equal op pending, or queues it, and runs what can run.
func (s *scheduler) enqueue(o *op) {
	for _, q := range s.pending() {
		// Only a request joins an unload; evictions and yields stand alone.
		if o.group == nil && q.kind() == o.kind() && q.name == o.name && q.numCtx == o.numCtx &&
			(q.kind() == opLoad || q.why == unloadRequested) {
			q.join(o)
			s.pump()
			return
		}
	}
	o.id = s.id()
	s.queue = append(s.queue, o)
	s.pump()
}

// pending is the op running (if any) and the queue, in order.
func (s *scheduler) pending() []*op {
	if s.cur == nil {
		return s.queue
	}
	return append([]*op{s.cur}, s.queue...)
}

// OnCancel drops a waiter that gave up; an op nobody waits for any more is
// not worth running, unless it already runs.
func (s *scheduler) OnCancel(w *waiter) {
	for _, o := range s.pending() {
		o.waiters = slices.DeleteFunc(o.waiters, func(x *waiter) bool { return x == w })
	}
	s.queue = slices.DeleteFunc(s.queue, func(o *op) bool { return o.forCallers() && len(o.waiters) == 0 })
	s.pump()
}

// OnTick runs what waited on time: busy graces ending, backoffs expiring.
func (s *scheduler) OnTick() { s.pump() }

// OnPaused stops (or resumes) evictions.
func (s *scheduler) OnPaused(p bool) {
	s.paused = p
	s.fx.Changed("")
	s.pump()
}

// OnListed runs what waited for the catalogue.
func (s *scheduler) OnListed() { s.pump() }

// pump starts the first queued op that can run, while none runs.
func (s *scheduler) pump() {
	for s.cur == nil {
		i, act := 0, actWait
		for i = range s.queue {
			if act = s.prepare(s.queue[i]); act != actWait {
				break
			}
		}
		if act == actWait {
			return // empty, or every op waits (busy models, discovery)
		}
		o := s.queue[i]
		s.queue = slices.Delete(s.queue, i, i+1)
		if act == actDone {
			continue
		}
		s.setCur(o)
		if !o.refreshed {
			s.fx.ReadServer(o.id)
			return
		}
		s.start(o)
	}
}

type action int

const (
	actWait  action = iota // leave it queued
	actStart               // run it now
	actDone                // answered already; drop it
)

// prepare decides what to do with a queued op now; it answers the op's
// callers itself when there is nothing to do or it cannot succeed. Before
// the server was read again it only checks what cannot change.
func (s *scheduler) prepare(o *op) action {
	if o.kind() == opLoad && s.handedBack {
		// Nothing loads while the card is given back, whatever queued it
		// (a request, a put-back, a reload).
		s.answerAll(o, result{err: fmt.Errorf("not loading %s: %w", o.name, ErrYielded)})
		return actDone
	}
	md, ok := s.find(o.name)
	if !ok {
		return s.notFound(o)
	}
	o.name = md.name
	if o.kind() == opUnload {
		return s.prepareUnload(o, md)
	}
	return s.prepareLoad(o, md)
}

// notFound settles an op for a model the catalogue does not hold, unless
// the first listing is still on its way.
func (s *scheduler) notFound(o *op) action {
	listed, listing, listErr := s.cat.listState()
	switch {
	case listing || !listed && listErr == nil:
		return actWait
	case !listed:
		s.fail(o, fmt.Errorf("cannot list models: %w", errors.Join(listErr, ErrUnreachable)))
	default:
		s.fail(o, s.cat.unknown(o.name))
	}
	return actDone
}

// prepareLoad checks a load: done already, backing off, or its size not
// known well enough to place it; once the server was read again, plan.
func (s *scheduler) prepareLoad(o *op, md target) action {
	if s.hit(md, o.numCtx) {
		s.touch(md)
		s.answer(o, md, result{already: true})
		return actDone
	}
	ctx := s.ctxFor(md, o.numCtx)
	if err := s.backingOff(md.spec, ctx); err != nil {
		s.answerAll(o, result{err: err}) // not news: the failure is in the history
		return actDone
	}
	need, calibrated := s.cat.needAt(md.name, ctx)
	switch {
	case !md.hasDetails:
		s.fail(o, fmt.Errorf("%s: no details from the server: %w", o.name, errors.Join(md.showErr, ErrLoadFailed)))
		return actDone
	case !md.detailed && !calibrated:
		if !md.showing {
			s.fx.Show(md.name) // its estimate needs /api/show
		}
		return actWait
	case md.estErr != "" && !calibrated:
		s.fail(o, fmt.Errorf("%s: cannot estimate its size (%s), so it cannot be placed safely: %w", o.name, md.estErr, ErrLoadFailed))
		return actDone
	case !o.refreshed:
		return actStart // plan once the server has been read again
	}
	return s.makeRoom(o, md, ctx, need)
}

// makeRoom picks the victims a load of need bytes at ctx makes room with; a
// put-back or restore that would need any is dropped.
func (s *scheduler) makeRoom(o *op, md target, ctx int, need uint64) action {
	victims, err := s.victims(md, need)
	switch {
	case err == nil && len(victims) > 0 && o.gentle():
		return s.drop(o) // putting a model back never evicts another
	case errors.Is(err, evict.ErrBlocked) && !o.gentle():
		o.refreshed = false // read the server again when it can go
		return actWait
	case err != nil:
		if o.gentle() {
			return s.drop(o)
		}
		s.fail(o, fmt.Errorf("%s needs %s, budget %s: %w", o.name, fmtBytes(need), fmtBytes(s.budget()), err))
		return actDone
	case len(victims) > 0 && s.paused:
		s.fail(o, fmt.Errorf("%s needs %s evicted to fit: %w", o.name, strings.Join(names(victims), ", "), ErrPaused))
		return actDone
	}
	o.victims, o.need, o.numCtx = victims, need, ctx
	return actStart
}

func (s *scheduler) prepareUnload(o *op, md target) action {
	if !o.refreshed {
		return actStart // read /api/ps first: another client may have loaded it
	}
	if !md.onCard() {
		s.answer(o, md, result{already: true})
		return actDone
	}
	if o.conditional() {
		lim := s.shedLimits()
		if o.why == giveBack {
			lim = evict.Limits{Budget: s.roomLeft()}
		}
		if !slices.ContainsFunc(evict.Shed(s.entries(), lim, s.tune.policy), func(e evict.Entry) bool { return e.Name == md.name }) {
			return actDone // the card fits again without this eviction
		}
	}
	if s.busy(md.name) {
		o.refreshed = false
		return actWait // never pull a model from under a running request
	}
	return actStart
}

// drop forgets a put-back or restore that cannot run without evicting.
func (s *scheduler) drop(o *op) action {
	s.log.Info("not putting back a model: it no longer fits without evicting another", "model", o.name)
	s.answerAll(o, result{err: fmt.Errorf("%s no longer fits without evicting another model", o.name)})
	return actDone
}

// start runs o's first step.
func (s *scheduler) start(o *op) {
	o.began = s.now()
	s.fx.Changed("") // a load shows from when it starts
	if o.kind() == opUnload {
		s.transition(o.name, Unloading)
		s.fx.Unload(o.id, o.name, s.unloadWithin())
		return
	}
	for _, v := range o.victims {
		s.transition(v.Name, Unloading)
	}
	s.transition(o.name, Loading)
	o.asked = o.numCtx
	s.fx.Emit(Event{Kind: EventLoadStarted, Model: o.name, Reason: o.reason, Bytes: o.need})
	s.next(o)
}

// next starts o's next step: the next victim's unload, or the load. Once
// the card is given back, it stops.
func (s *scheduler) next(o *op) {
	if s.handedBack {
		s.stopForYield(o)
		return
	}
	if o.step < len(o.victims) {
		s.fx.Unload(o.id, o.victims[o.step].Name, s.unloadWithin())
		return
	}
	sp, _ := s.cat.spec(o.name)
	o.loading = true
	s.fx.Load(o.id, serving.LoadRequest{Name: o.name, NumCtx: o.numCtx, Embedding: sp.embedding},
		loadDeadline(o.need, s.tune.LoadTimeout))
}

// stopForYield ends a load that was making room when the card was given
// back: its model is not loaded, the victims not yet unloaded stay (the
// yield unloads them), and those already gone are put back by the
// restore, as the yield recorded them.
func (s *scheduler) stopForYield(o *op) {
	for _, v := range o.victims[o.step:] {
		s.transition(v.Name, Loaded)
	}
	s.transition(o.name, Idle)
	s.setCur(nil)
	err := fmt.Errorf("not loading %s: %w", o.name, ErrYielded)
	s.fx.Emit(Event{Kind: EventLoadFailed, Model: o.name, Reason: o.reason, Error: err.Error()})
	s.answerAll(o, result{evicted: o.evicted, err: err})
	s.pump()
}

// OnStop answers every caller with err: the manager is stopping.
func (s *scheduler) OnStop(err error) {
	for _, o := range s.pending() {
		s.answerAll(o, result{err: err})
	}
	s.queue = nil
	s.setCur(nil)
}

// fail answers o's callers with err and records a failed load.
func (s *scheduler) fail(o *op, err error) {
	if o.kind() == opLoad && !o.gentle() {
		s.fx.Emit(Event{Kind: EventLoadFailed, Model: o.name, Reason: o.reason, Error: err.Error()})
	}
	s.answerAll(o, result{err: err})
}

// answer replies to o's callers after it succeeded, granting leases.
func (s *scheduler) answer(o *op, md target, r result) {
	r.numCtx = md.loadedCtx
	for _, w := range o.waiters {
		s.fx.Reply(w, s.grant(w, md, r))
	}
	o.waiters = nil
	s.settle(o, nil)
}

func (s *scheduler) answerAll(o *op, r result) {
	for _, w := range o.waiters {
		s.fx.Reply(w, r)
	}
	o.waiters = nil
	s.settle(o, r.err)
}

// hit reports whether a request for md at numCtx is served by what is
// loaded now. Without a context asked for, one we loaded serves at
// whatever context we chose (so clients never cause a reload); one another
// client loaded serves only at the model's own context.
func (s *scheduler) hit(md target, numCtx int) bool {
	switch {
	case md.state != Loaded:
		return false
	case numCtx > 0:
		return numCtx == md.loadedCtx
	}
	return !md.adopted || md.ctxAuto || md.loadedCtx == md.numCtx
}

// ctxFor is the context length a load of md is made at: the one asked
// for, the model's own, or for "auto" the largest that fits the room.
func (s *scheduler) ctxFor(md target, numCtx int) int {
	switch {
	case numCtx > 0:
		return numCtx
	case md.ctxAuto:
		if n := maxContext(md.fit, s.roomFor(md)); n > 0 {
			return n
		}
		return min(minAutoCtx, md.fit.ceiling)
	}
	return md.numCtx
}
