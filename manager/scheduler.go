package manager

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/evict"
)

// The scheduler decides every load and unload. It is a plain value: the
// owner goroutine hands it events through its On methods and it answers by
// calling Effects, which do the I/O elsewhere and report back as further
// events. Nothing in it blocks, sleeps or starts a goroutine, so its tests
// drive it step by step against a recorder.
//
// One op (a load or an unload) runs at a time, so every plan sees settled
// state; requests for a model already queued join that op. Before an op
// runs, the server is read again (another client may have changed it).
// Every step has a deadline; a failed load is remembered with a backoff so
// that a retry does not evict the same models again, and the models it
// evicted are put back. Requests hold models through leases, which only
// their holder releases.

// Effects are what the scheduler asks of the world.
type Effects interface {
	// ReadServer reads /api/ps and the card for op, then reports
	// OnRefreshed.
	ReadServer(op uint64)
	// Load loads req within the deadline, then reports OnLoaded.
	Load(op uint64, req LoadRequest, within time.Duration)
	// Unload unloads name within the deadline, then reports OnUnloaded.
	Unload(op uint64, name string, within time.Duration)
	// Abandon asks the server to drop a load the scheduler gave up on
	// (it timed out); the next poll shows what came of it.
	Abandon(name string)
	// Discover lists the models again (one vanished mid-load).
	Discover()
	// Show reads a model's details (/api/show) when the list alone
	// described it; the catalogue takes them and OnListed follows.
	Show(name string)
	// Reply answers a caller.
	Reply(w *waiter, r result)
	// Emit records an event for the history and subscribers.
	Emit(e Event)
	// Persist saves the use counts and measured sizes.
	Persist()
}

// Deadlines. A load's grows with its bytes (see loadDeadline).
const (
	unloadDeadline = time.Minute
	// restoreWindow: a model evicted for a load that then failed is put
	// back if it was used this recently.
	restoreWindow = 5 * time.Minute
	// Failure backoff: doubles from backoffBase per failure in a row.
	backoffBase = 30 * time.Second
	backoffMax  = 10 * time.Minute
)

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

type opKind int

const (
	opLoad opKind = iota
	opUnload
)

func (k opKind) String() string {
	if k == opUnload {
		return "unload"
	}
	return "load"
}

// op is one load or unload, queued until it can run.
type op struct {
	id      uint64
	kind    opKind
	name    string
	numCtx  int // load: the context length asked for (0: the model's own)
	reason  string
	waiters []*waiter
	// restore: a model put back after a failed load. It never evicts and
	// nobody waits for it. shed: an unload that brings the card back under
	// the limits; it is an eviction.
	restore, shed bool
	// refreshed: the server was read again since the op reached the front.
	refreshed bool
	// requested: callers asked for it; once none waits any more it is not
	// run. Ops the scheduler makes itself (put back, shed, reload) run anyway.
	requested bool

	// group: the op is part of a yield or a restore, answered together.
	group *group
	// yield: an unload that gives the card back to other programs.
	yield bool

	// Set when it runs.
	began   time.Time
	need    uint64
	victims []evict.Entry
	step    int // victims unloaded so far
	evicted []string
	// asked is the context length first tried; spilled why a smaller one
	// is tried now (gpu_only); failAfter is the error to answer once the
	// model that did not fit the GPU is unloaded again.
	asked     int
	spilled   string
	failAfter error
}

// group answers one caller for several ops (yield, restore) once all ended.
type group struct {
	w       *waiter
	pending int
	done    []string
	errs    []error
}

// yielded is a model unloaded to give the card back, to be put back later.
type yielded struct {
	Name     string    `json:"name"`
	NumCtx   int       `json:"context_length"`
	Bytes    uint64    `json:"bytes"`
	LastUsed time.Time `json:"last_used"`
}

// waiter is one caller of an op; lease asks for a hold on the model when
// the load succeeds, taken in the same step so no eviction slips between.
type waiter struct {
	reply chan result // buffered: replies never block
	lease bool
}

func newWaiter(lease bool) *waiter { return &waiter{reply: make(chan result, 1), lease: lease} }

// result is what a caller gets.
type result struct {
	evicted []string
	numCtx  int    // the context length the model is loaded at
	already bool   // it was loaded; nothing was done
	lease   uint64 // the hold taken, 0 for none
	err     error
}

// lease is one request's hold on a model: it is not evicted while the lease
// lives (up to the busy grace, when one is set). Only Release ends it; a
// poll never does. lost: the server dropped the model on its own, so the
// lease protects nothing any more.
type lease struct {
	model string
	since time.Time
	lost  bool
}

// failure is the memory of failed loads of one model at one context
// length; it is saved, so a restart (or the next command) backs off too.
type failure struct {
	Count int       `json:"count"`
	At    time.Time `json:"at"`
	Until time.Time `json:"until"`
	Err   string    `json:"error"`
}

// tuning is the settings with the policy they name resolved.
type tuning struct {
	Settings
	policy evict.Policy
}

type scheduler struct {
	cat  *catalogue
	conn *connection
	tune *tuning
	fx   Effects
	now  func() time.Time
	log  *slog.Logger

	queue  []*op
	cur    *op
	nextID uint64
	leases map[uint64]*lease
	failed map[loadKey]failure
	paused bool
	clock  float64 // the eviction policy's aging value

	// handedBack: the user gave the GPU back (Yield) and loads are refused
	// until Restore. yielded: models to put back, by the user's Restore or,
	// for those unloaded because other programs took the card, once they
	// release it.
	handedBack bool
	yielded    []yielded
}

func newScheduler(cat *catalogue, conn *connection, tune *tuning, fx Effects, now func() time.Time, log *slog.Logger) *scheduler {
	return &scheduler{cat: cat, conn: conn, tune: tune, fx: fx, now: now, log: log,
		leases: map[uint64]*lease{}, failed: map[loadKey]failure{}}
}

func (s *scheduler) id() uint64 { s.nextID++; return s.nextID }

// OnLoad asks for name to be loaded (at numCtx, 0 for the model's own).
func (s *scheduler) OnLoad(w *waiter, name, reason string, numCtx int) (only *model) {
	if s.handedBack {
		s.fx.Reply(w, result{err: fmt.Errorf("not loading %s: %w", name, ErrYielded)})
		return nil
	}
	md := s.cat.lookup(name)
	if md == nil && s.cat.listed {
		s.fx.Reply(w, result{err: s.cat.unknown(name)})
		return nil
	}
	if md != nil {
		name = md.inst.Name
		if s.hit(md, numCtx) {
			s.touch(md)
			s.fx.Reply(w, s.grant(w, md, result{already: true, numCtx: md.loadedCtx}))
			return md // its use and its holds changed, nothing else
		}
		if err := s.backingOff(md, s.ctxFor(md, numCtx)); err != nil {
			s.fx.Reply(w, result{err: err})
			return nil
		}
	}
	s.enqueue(&op{kind: opLoad, name: name, numCtx: numCtx, reason: reason, waiters: []*waiter{w}, requested: true})
	return nil
}

// OnUnload asks for name to be unloaded.
func (s *scheduler) OnUnload(w *waiter, name, reason string) {
	if md := s.cat.lookup(name); md != nil {
		name = md.inst.Name
	} else if s.cat.listed {
		s.fx.Reply(w, result{err: s.cat.unknown(name)})
		return
	}
	s.enqueue(&op{kind: opUnload, name: name, reason: reason, waiters: []*waiter{w}, requested: true})
}

// enqueue joins o to an equal op pending, or queues it, and runs what can run.
func (s *scheduler) enqueue(o *op) {
	for _, q := range s.pending() {
		if o.group == nil && q.kind == o.kind && q.name == o.name && q.numCtx == o.numCtx && !q.shed && !q.yield {
			q.waiters = append(q.waiters, o.waiters...)
			q.restore = q.restore && o.restore
			q.requested = q.requested && o.requested
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
	s.queue = slices.DeleteFunc(s.queue, func(o *op) bool { return o.requested && len(o.waiters) == 0 })
	s.pump()
}

// OnRelease ends a lease; releasing one twice, or one that never was, does
// nothing.
func (s *scheduler) OnRelease(id uint64) {
	if _, ok := s.leases[id]; !ok {
		return
	}
	delete(s.leases, id)
	s.pump()
}

// OnTick runs what waited on time: busy graces ending, backoffs expiring.
func (s *scheduler) OnTick() { s.pump() }

// OnPaused stops (or resumes) evictions.
func (s *scheduler) OnPaused(p bool) { s.paused = p; s.pump() }

// OnSettings re-plans after the settings changed (the owner re-evaluated
// the catalogue): a smaller budget sheds models at once, and a model whose
// context length changed is loaded again at the new one. was holds each
// model's context length before the change.
func (s *scheduler) OnSettings(was map[string]int) {
	for name, md := range s.cat.models {
		if old, ok := was[name]; ok && old != md.numCtx && md.state == Loaded && !md.ctxAuto && md.loadedCtx != md.numCtx {
			s.enqueue(&op{kind: opLoad, name: name, numCtx: md.numCtx,
				reason: fmt.Sprintf("context length changed from %d to %d", md.loadedCtx, md.numCtx)})
		}
	}
	s.shed("over the new budget")
	s.pump()
}

// OnListed runs what waited for the catalogue.
func (s *scheduler) OnListed() { s.pump() }

// OnPoll reconciles the card with what the server reports, gives the card
// back when other programs need it and puts models back when they are done.
func (s *scheduler) OnPoll(ps []Running) {
	s.reconcile(ps)
	s.shed("")
	s.giveBack()
	s.putBack()
	s.pump()
}

// OnYield gives the whole card back at the user's request: every model of
// ours is unloaded (pinned ones too) and remembered, loads are refused
// until OnRestore, and w is answered once all are off.
func (s *scheduler) OnYield(w *waiter) {
	if s.handedBack {
		s.fx.Reply(w, result{})
		return
	}
	s.handedBack = true
	s.yielded = nil
	defer s.fx.Persist()
	// Loads waiting in the queue will not run.
	s.queue = slices.DeleteFunc(s.queue, func(o *op) bool {
		if o.kind != opLoad {
			return false
		}
		s.answerAll(o, result{err: fmt.Errorf("not loading %s: %w", o.name, ErrYielded)})
		return true
	})
	g := &group{w: w}
	unload := func(name string) {
		g.pending++
		s.queue = append(s.queue, &op{id: s.id(), kind: opUnload, name: name, yield: true, group: g,
			reason: "gave the GPU back at the user's request"})
	}
	for _, md := range s.cat.models {
		if md.state == Loaded {
			unload(md.inst.Name)
		}
	}
	// A load in flight ends first (one op at a time) and its model goes
	// with the rest, so the answer means the card is free: a script that
	// yields and then starts a game must not race a load.
	if o := s.cur; o != nil && o.kind == opLoad {
		if md := s.cat.lookup(o.name); md != nil && md.state != Loaded {
			unload(md.inst.Name)
		}
	}
	if g.pending == 0 {
		s.fx.Reply(w, result{})
	}
	s.pump()
}

// OnRestore puts back what the last yield unloaded, at the same context
// lengths, and lets loads run again; w is answered once all are back.
func (s *scheduler) OnRestore(w *waiter) {
	s.handedBack = false
	g := &group{w: w}
	for _, y := range s.yielded {
		if s.cat.models[y.Name] == nil {
			continue // deleted since
		}
		g.pending++
		s.enqueue(&op{kind: opLoad, name: y.Name, numCtx: y.NumCtx, group: g, restore: true,
			reason: restoredReason + "put back after the GPU was given back"})
	}
	s.yielded = nil
	if g.pending == 0 {
		s.fx.Reply(w, result{})
	}
	s.pump()
}

// yieldedNames are the models waiting to be put back.
func (s *scheduler) yieldedNames() []string {
	var out []string
	for _, y := range s.yielded {
		out = append(out, y.Name)
	}
	return out
}

// others is what other programs hold on the card (NVML only).
func (s *scheduler) others() uint64 { return s.conn.others() }

// roomLeft is what our models may hold with other programs' use: the card
// less theirs and the safety margin, never more than the budget.
func (s *scheduler) roomLeft() uint64 {
	v := s.conn.vram
	budget := s.budget()
	if v.Source != SourceNVML || v.Total == 0 {
		return budget
	}
	taken := s.conn.others() + s.tune.SafetyMargin
	return min(budget, max(v.Total, taken)-taken)
}

// giveBack unloads the least useful unpinned models when other programs
// took so much of the card that ours no longer fit beside them.
func (s *scheduler) giveBack() {
	if s.handedBack || s.paused || s.conn.vram.Source != SourceNVML {
		return
	}
	for _, o := range s.pending() {
		if o.yield {
			return // one round at a time
		}
	}
	room := s.roomLeft()
	if s.cat.ours() <= room {
		return
	}
	lim := evict.Limits{Budget: room}
	for _, v := range evict.Shed(s.entries(), lim, s.tune.policy) {
		s.queue = append(s.queue, &op{id: s.id(), kind: opUnload, name: v.Name, yield: true, shed: true,
			reason: fmt.Sprintf("other programs need %s of the card", fmtBytes(s.others()))})
	}
}

// putBack reloads models given back to other programs once those release
// the memory, with a safety margin to spare so a program that wavers does
// not make them bounce.
func (s *scheduler) putBack() {
	if s.handedBack || len(s.yielded) == 0 || s.conn.vram.Source != SourceNVML {
		return
	}
	for _, o := range s.pending() {
		if o.yield {
			return // still giving back
		}
	}
	free := max(s.roomLeft(), s.cat.ours()) - s.cat.ours()
	keep := s.yielded[:0]
	for _, y := range s.yielded {
		md := s.cat.models[y.Name]
		switch {
		case md == nil || md.onCard():
		case y.Bytes+s.tune.SafetyMargin <= free:
			free -= y.Bytes
			s.enqueue(&op{kind: opLoad, name: y.Name, numCtx: y.NumCtx, restore: true,
				reason: restoredReason + "other programs released the memory"})
		default:
			keep = append(keep, y)
		}
	}
	s.yielded = keep
}

// OnRefreshed is the server read again before op: err means it did not
// answer, and the op fails.
func (s *scheduler) OnRefreshed(id uint64, ps []Running, err error) {
	if err == nil {
		s.reconcile(ps)
	}
	o := s.cur
	if o == nil || o.id != id {
		s.pump()
		return
	}
	s.cur = nil
	if err != nil {
		s.fail(o, fmt.Errorf("reading what %s has loaded before %sing %s: %w", "Ollama", o.kind, o.name, err))
	} else {
		o.refreshed = true
		s.queue = append([]*op{o}, s.queue...)
	}
	s.shed("")
	s.pump()
}

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
		s.cur = o
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
	md := s.cat.lookup(o.name)
	if md == nil {
		switch {
		case s.cat.listing || !s.cat.listed && s.cat.listErr == nil:
			return actWait // the first listing is on its way
		case !s.cat.listed:
			s.fail(o, fmt.Errorf("cannot list models: %w", errors.Join(s.cat.listErr, ErrUnreachable)))
		default:
			s.fail(o, s.cat.unknown(o.name))
		}
		return actDone
	}
	o.name = md.inst.Name
	if o.kind == opUnload {
		return s.prepareUnload(o, md)
	}
	if s.hit(md, o.numCtx) {
		s.touch(md)
		s.answer(o, md, result{already: true})
		return actDone
	}
	ctx := s.ctxFor(md, o.numCtx)
	if err := s.backingOff(md, ctx); err != nil {
		s.answerAll(o, result{err: err}) // not news: the failure is in the history
		return actDone
	}
	need, calibrated := s.cat.need(md, ctx)
	switch {
	case !md.hasDetails:
		s.fail(o, fmt.Errorf("%s: no details from the server: %w", o.name, errors.Join(md.showErr, ErrLoadFailed)))
		return actDone
	case !md.detailed && !calibrated:
		if !md.showing {
			s.fx.Show(md.inst.Name) // its estimate needs /api/show
		}
		return actWait
	}
	if md.estErr != "" && !calibrated {
		s.fail(o, fmt.Errorf("%s: cannot estimate its size (%s), so it cannot be placed safely: %w", o.name, md.estErr, ErrLoadFailed))
		return actDone
	}
	if !o.refreshed {
		return actStart // plan once the server has been read again
	}
	// A model loaded at another context length is replaced by this load
	// (Ollama unloads the old instance), so its bytes do not count twice.
	loaded := slices.DeleteFunc(s.entries(), func(e evict.Entry) bool { return e.Name == md.inst.Name })
	lim := s.limits()
	if md.state == Loaded && lim.HasDevice {
		lim.DeviceRoom += md.size
	}
	victims, err := evict.Plan(loaded, need, lim, s.tune.policy)
	switch {
	case err == nil && len(victims) > 0 && o.restore:
		return s.drop(o) // putting a model back never evicts another
	case errors.Is(err, evict.ErrBlocked) && !o.restore:
		o.refreshed = false // read the server again when it can go
		return actWait
	case err != nil:
		if o.restore {
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

func (s *scheduler) prepareUnload(o *op, md *model) action {
	if !o.refreshed {
		return actStart // read /api/ps first: another client may have loaded it
	}
	if !md.onCard() {
		s.answer(o, md, result{already: true})
		return actDone
	}
	if o.shed {
		lim := s.shedLimits()
		if o.yield {
			lim = evict.Limits{Budget: s.roomLeft()}
		}
		if !slices.ContainsFunc(evict.Shed(s.entries(), lim, s.tune.policy), func(e evict.Entry) bool { return e.Name == md.inst.Name }) {
			return actDone // the card fits again without this eviction
		}
	}
	if s.busy(md) {
		o.refreshed = false
		return actWait // never pull a model from under a running request
	}
	return actStart
}

// drop forgets a restore op that cannot run without harm.
func (s *scheduler) drop(o *op) action {
	s.log.Info("not putting back a model: it no longer fits without evicting another", "model", o.name)
	s.answerAll(o, result{err: fmt.Errorf("%s no longer fits without evicting another model", o.name)})
	return actDone
}

// start runs o's first step.
func (s *scheduler) start(o *op) {
	md := s.cat.lookup(o.name)
	o.began = s.now()
	if o.kind == opUnload {
		s.transition(md, Unloading)
		s.fx.Unload(o.id, md.inst.Name, s.unloadWithin())
		return
	}
	for _, v := range o.victims {
		s.transition(s.cat.models[v.Name], Unloading)
	}
	s.transition(md, Loading)
	o.asked = o.numCtx
	s.fx.Emit(Event{Kind: EventLoadStarted, Model: o.name, Reason: o.reason, Bytes: o.need})
	s.next(o)
}

// next starts o's next step: the next victim's unload, or the load.
func (s *scheduler) next(o *op) {
	if o.step < len(o.victims) {
		s.fx.Unload(o.id, o.victims[o.step].Name, s.unloadWithin())
		return
	}
	md := s.cat.lookup(o.name)
	s.fx.Load(o.id, LoadRequest{Name: o.name, NumCtx: o.numCtx, Embedding: isEmbedding(md.det.Capabilities)},
		loadDeadline(o.need, s.tune.LoadTimeout))
}

// OnUnloaded is the outcome of an unload step.
func (s *scheduler) OnUnloaded(id uint64, name string, err error, took time.Duration) {
	o := s.cur
	if o == nil || o.id != id {
		return
	}
	md := s.cat.models[name]
	if o.kind == opUnload {
		s.cur = nil
		s.unloaded(o, md, err, took)
		s.pump()
		return
	}
	if name == o.name { // the model itself, off the GPU again (gpu_only)
		s.respilled(o, md, err)
		return
	}
	v := o.victims[o.step]
	if err != nil {
		// The rest stay; the victim's state comes from the next poll.
		for _, r := range o.victims[o.step:] {
			s.transition(s.cat.models[r.Name], Loaded)
		}
		s.cur = nil
		target := s.cat.lookup(o.name)
		s.transition(target, Idle)
		err = fmt.Errorf("making room for %s: unloading %s: %w", o.name, name, err)
		s.fx.Emit(Event{Kind: EventLoadFailed, Model: o.name, Reason: o.reason, Error: err.Error()})
		s.answerAll(o, result{evicted: o.evicted, err: errors.Join(err, ErrLoadFailed)})
		s.restore(o)
		s.pump()
		return
	}
	if md != nil {
		s.transition(md, Idle)
		md.size, md.loadedCtx = 0, 0
	}
	s.clock = s.tune.policy.Evicted(v, s.clock)
	o.evicted = append(o.evicted, name)
	s.fx.Emit(Event{Kind: EventEvicted, Model: name, For: o.name, Bytes: v.Bytes, Duration: took,
		Reason: fmt.Sprintf("unloaded %s (%s) to make room for %s (%s)", name, fmtBytes(v.Bytes), o.name, fmtBytes(o.need))})
	o.step++
	s.next(o)
}

// unloaded settles an unload op.
func (s *scheduler) unloaded(o *op, md *model, err error, took time.Duration) {
	if md == nil {
		s.answerAll(o, result{err: err})
		return
	}
	if err != nil {
		s.transition(md, Loaded)
		s.answerAll(o, result{err: fmt.Errorf("unloading %s: %w", md.inst.Name, err)})
		return
	}
	s.transition(md, Idle)
	size, ctx := md.size, md.loadedCtx
	md.size, md.loadedCtx, md.cpuShare = 0, 0, 0
	kind := EventUnloaded
	switch {
	case o.yield:
		kind = EventYielded
		if s.handedBack || s.now().Sub(md.lastUsed) <= restoreWindow {
			s.yielded = append(s.yielded, yielded{Name: md.inst.Name, NumCtx: ctx, Bytes: size, LastUsed: md.lastUsed})
		}
	case o.shed:
		kind = EventEvicted
	}
	s.fx.Emit(Event{Kind: kind, Model: md.inst.Name, Reason: o.reason, Bytes: size, Duration: took})
	s.answerAll(o, result{})
	s.fx.Persist()
}

// OnLoaded is the outcome of a load step; ps is /api/ps read right after a
// successful one.
func (s *scheduler) OnLoaded(id uint64, ps []Running, err error, took time.Duration) {
	o := s.cur
	if o == nil || o.id != id {
		return
	}
	s.cur = nil
	md := s.cat.lookup(o.name)
	if md == nil { // forgotten while it loaded; the listing will tell
		s.answerAll(o, result{evicted: o.evicted, err: err})
		s.pump()
		return
	}
	key := keyOf(md, o.numCtx)
	if err != nil {
		s.transition(md, Failed)
		// A server that went away (stopped, killed, restarting) is not the
		// model's failure: once it is back, the model may be tried. Nor is
		// a put-back that failed (a model that loaded before, on a busy
		// machine): a request for it must not be refused for that.
		if errors.Is(err, ErrUnreachable) || o.restore {
			md.lastErr = err.Error()
		} else {
			s.remember(md, o.numCtx, err)
		}
		s.fx.Emit(Event{Kind: EventLoadFailed, Model: o.name, Reason: o.reason, Duration: took, Error: err.Error()})
		switch {
		case errors.Is(err, ErrModelUnknown):
			// Deleted while we were loading it: forget it and look again.
			s.cat.forget(md)
			s.fx.Discover()
		case errors.Is(err, ErrTimedOut):
			s.fx.Abandon(md.inst.Name)
		}
		s.answerAll(o, result{evicted: o.evicted, err: fmt.Errorf("loading %s: %w", o.name, errors.Join(err, ErrLoadFailed))})
		s.restore(o)
		s.fx.Persist()
		s.pump()
		return
	}
	s.transition(md, Loaded)
	md.loadedCtx, md.adopted = o.numCtx, false
	s.reconcile(ps)
	md.cpuShare = s.cpuShare(ps, md.inst.Name)
	if md.cpuShare > 0 && s.tune.GPUOnly && md.state == Loaded {
		s.spill(o, md)
		return
	}
	delete(s.failed, key)
	md.lastErr = ""
	s.touch(md)
	if md.state == Loaded && md.size > 0 && !loading(ps, md.inst.Name) {
		s.cat.calibrate(md, o.numCtx, md.size)
	}
	reason := o.reason
	if o.spilled != "" {
		reason = fmt.Sprintf("%s; loaded at %d tokens instead of %d: %s", reason, o.numCtx, o.asked, o.spilled)
	}
	kind := EventLoaded
	if strings.HasPrefix(o.reason, restoredReason) {
		kind = EventRestored
	}
	s.fx.Emit(Event{Kind: kind, Model: o.name, Reason: reason, Bytes: md.size, Duration: took})
	if md.cpuShare > 0 {
		s.fx.Emit(Event{Kind: EventSpilled, Model: o.name, Bytes: md.size,
			Reason: fmt.Sprintf("%s is %.0f %% on the CPU: Ollama could not fit it on the GPU, so it answers several times slower (set gpu_only to refuse that)", o.name, 100*md.cpuShare)})
	}
	s.answer(o, md, result{evicted: o.evicted})
	s.fx.Persist()
	s.shed("")
	s.pump()
}

// restoredReason starts the reason of a model put back after a yield.
const restoredReason = "restored: "

// spill handles a load Ollama put partly on the CPU under gpu_only: the
// model is unloaded again and loaded at half the context, down to
// minAutoCtx; below that the load fails and the model stays off the card.
func (s *scheduler) spill(o *op, md *model) {
	why := fmt.Sprintf("at %d tokens %.0f %% of it was on the CPU", o.numCtx, 100*md.cpuShare)
	if o.spilled == "" {
		o.spilled = why
	}
	if next := o.numCtx / 2; next >= min(minAutoCtx, o.asked) && next < o.numCtx {
		o.numCtx = next
	} else {
		o.failAfter = fmt.Errorf("%s does not fit on the GPU (%s) and gpu_only keeps it off the CPU: %w", o.name, why, ErrSpilled)
	}
	s.cur = o
	s.transition(md, Unloading)
	s.fx.Unload(o.id, md.inst.Name, s.unloadWithin())
}

// respilled continues a gpu_only retry once the model is off the card.
func (s *scheduler) respilled(o *op, md *model, err error) {
	if err != nil {
		s.transition(md, Loaded) // still there; the next poll tells more
		s.cur = nil
		s.answerAll(o, result{evicted: o.evicted, err: fmt.Errorf("unloading %s after it spilled to the CPU: %w", o.name, err)})
		s.pump()
		return
	}
	s.transition(md, Idle)
	md.size, md.loadedCtx, md.cpuShare = 0, 0, 0
	if o.failAfter != nil {
		s.cur = nil
		s.remember(md, o.asked, o.failAfter)
		s.fx.Persist()
		s.fx.Emit(Event{Kind: EventLoadFailed, Model: o.name, Reason: o.reason, Error: o.failAfter.Error()})
		s.answerAll(o, result{evicted: o.evicted, err: errors.Join(o.failAfter, ErrLoadFailed)})
		s.restore(o)
		s.pump()
		return
	}
	s.transition(md, Loading)
	s.next(o)
}

// cpuShare is the part of name Ollama put on the CPU, when a GPU is there
// (the driver answers, or Ollama reports VRAM for some model): with no GPU
// Ollama runs on the CPU by design, and nothing is flagged.
func (s *scheduler) cpuShare(ps []Running, name string) float64 {
	gpu := s.conn.vram.Source == SourceNVML
	var r Running
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

// restore puts back the models a failed load evicted that were in use
// lately, so a failure leaves the card as it found it.
func (s *scheduler) restore(o *op) {
	for _, v := range o.victims {
		if !slices.Contains(o.evicted, v.Name) || s.now().Sub(v.LastUsed) > restoreWindow {
			continue
		}
		md := s.cat.models[v.Name]
		if md == nil {
			continue
		}
		s.enqueue(&op{kind: opLoad, name: v.Name, numCtx: md.loadedCtx, restore: true,
			reason: fmt.Sprintf("put back: %s failed to load", o.name)})
	}
}

// shed queues evictions when what is loaded no longer fits the limits.
func (s *scheduler) shed(why string) {
	for _, o := range s.pending() {
		if o.shed {
			return // one round at a time; the next poll looks again
		}
	}
	victims := evict.Shed(s.entries(), s.shedLimits(), s.tune.policy)
	if len(victims) == 0 || s.paused {
		return
	}
	if why == "" {
		why = "over the limits"
	}
	for _, v := range victims {
		s.queue = append(s.queue, &op{id: s.id(), kind: opUnload, name: v.Name, shed: true,
			reason: fmt.Sprintf("%s: %s of ours loaded, budget %s, %s", why, fmtBytes(s.cat.ours()), fmtBytes(s.budget()), s.countLimit())})
	}
}

// reconcile takes the server's list of loaded models as the truth: models
// loaded by other clients are adopted (their bytes count), and models that
// vanished without an unload of ours were dropped by the server itself
// (ollama stop, another client, its own eviction, a restart): their leases
// protect nothing any more.
func (s *scheduler) reconcile(ps []Running) {
	running := map[string]Running{}
	for _, r := range ps {
		running[r.Name] = r
	}
	for name, r := range running {
		md := s.cat.models[name]
		if md == nil {
			// Loaded but not (yet) listed: track it so its bytes count.
			md = &model{inst: Installed{Name: name, Digest: r.Digest}, live: live{state: Idle}}
			s.cat.models[name] = md
			s.fx.Discover()
		}
		md.size = r.VRAMBytes
		md.onGPU = r.VRAMBytes > 0
		if md.size == 0 {
			md.size = r.SizeBytes
		}
		if md.state == Idle || md.state == Failed {
			s.transition(md, Loaded)
			md.loadedCtx, md.adopted = r.ContextLength, true
			s.fx.Emit(Event{Kind: EventLoaded, Model: name, Bytes: md.size, Reason: "found loaded in Ollama (adopted)"})
		}
	}
	for name, md := range s.cat.models {
		if _, ok := running[name]; ok || md.state != Loaded {
			continue
		}
		if s.cur != nil && s.cur.name == name {
			continue // ours to settle
		}
		s.transition(md, Idle)
		size := md.size
		md.size, md.loadedCtx = 0, 0
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

// loading reports whether ps lists name as still loading (newer servers
// list a model while they load it, sized as its file).
func loading(ps []Running, name string) bool {
	for _, r := range ps {
		if r.Name == name {
			return r.Loading
		}
	}
	return false
}

// OnStop answers every caller with err: the manager is stopping.
func (s *scheduler) OnStop(err error) {
	for _, o := range s.pending() {
		s.answerAll(o, result{err: err})
	}
	s.queue, s.cur = nil, nil
}

// fail answers o's callers with err and records a failed load.
func (s *scheduler) fail(o *op, err error) {
	if o.kind == opLoad && !o.restore {
		s.fx.Emit(Event{Kind: EventLoadFailed, Model: o.name, Reason: o.reason, Error: err.Error()})
	}
	s.answerAll(o, result{err: err})
}

// answer replies to o's callers after it succeeded, granting leases.
func (s *scheduler) answer(o *op, md *model, r result) {
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

// settle counts o as ended in its group, and answers the group's caller
// when it was the last.
func (s *scheduler) settle(o *op, err error) {
	g := o.group
	if g == nil {
		return
	}
	o.group = nil
	if err != nil {
		g.errs = append(g.errs, err)
	} else {
		g.done = append(g.done, o.name)
	}
	if g.pending--; g.pending == 0 {
		s.fx.Reply(g.w, result{evicted: g.done, err: errors.Join(g.errs...)})
	}
}

// grant takes a lease for w when it asked for one and md is loaded.
func (s *scheduler) grant(w *waiter, md *model, r result) result {
	if !w.lease || r.err != nil {
		return r
	}
	if md.state != Loaded {
		r.err = fmt.Errorf("%s was unloaded before it could be used: %w", md.inst.Name, ErrLoadFailed)
		return r
	}
	r.lease = s.id()
	s.leases[r.lease] = &lease{model: md.inst.Name, since: s.now()}
	return r
}

// busy reports whether live leases hold md in place: until they end, or
// until the busy grace ends when one is set.
func (s *scheduler) busy(md *model) bool {
	now := s.now()
	for _, l := range s.leases {
		if l.model == md.inst.Name && !l.lost && (s.tune.BusyGrace == 0 || now.Sub(l.since) < s.tune.BusyGrace) {
			return true
		}
	}
	return false
}

// holds counts md's live leases.
func (s *scheduler) holds(md *model) int {
	n := 0
	for _, l := range s.leases {
		if l.model == md.inst.Name && !l.lost {
			n++
		}
	}
	return n
}

// remember records a failed load of md at numCtx, for the backoff.
func (s *scheduler) remember(md *model, numCtx int, err error) {
	md.lastErr = err.Error()
	key := keyOf(md, numCtx)
	f := s.failed[key]
	f.Count++
	f.At, f.Err = s.now(), err.Error()
	f.Until = f.At.Add(min(backoffBase<<(f.Count-1), backoffMax))
	s.failed[key] = f
}

// backingOff refuses a load that failed lately, until its backoff ends.
func (s *scheduler) backingOff(md *model, numCtx int) error {
	f, ok := s.failed[keyOf(md, numCtx)]
	if !ok || !s.now().Before(f.Until) {
		return nil
	}
	return fmt.Errorf("%s failed to load %s ago (%s); not trying again for %s: %w", md.inst.Name,
		s.now().Sub(f.At).Round(time.Second), f.Err, f.Until.Sub(s.now()).Round(time.Second), ErrLoadFailed)
}

// retryAt is when md may be tried again at its own context length (zero
// when it may now).
func (s *scheduler) retryAt(md *model) time.Time {
	if len(s.failed) == 0 {
		return time.Time{}
	}
	if f, ok := s.failed[keyOf(md, md.numCtx)]; ok && s.now().Before(f.Until) {
		return f.Until
	}
	return time.Time{}
}

// loadKey names a model at a context length (the failure memory's key).
type loadKey struct {
	id     string // digest, or the name when there is none
	numCtx int
}

func (k loadKey) String() string { return fmt.Sprintf("%s@%d", k.id, k.numCtx) }

// failures are the backoffs still running, for the state file.
func (s *scheduler) failures() map[string]failure {
	out := map[string]failure{}
	for k, f := range s.failed {
		if s.now().Before(f.Until) {
			out[k.String()] = f
		}
	}
	return out
}

// restoreFailures takes back the backoffs a state file kept.
func (s *scheduler) restoreFailures(saved map[string]failure) {
	for k, f := range saved {
		i := strings.LastIndexByte(k, '@')
		n, err := strconv.Atoi(k[i+1:])
		if i < 0 || err != nil || !s.now().Before(f.Until) {
			continue
		}
		s.failed[loadKey{k[:i], n}] = f
	}
}

func keyOf(md *model, numCtx int) loadKey {
	id := md.inst.Digest
	if id == "" {
		id = md.inst.Name
	}
	return loadKey{id, numCtx}
}

// hit reports whether a request for md at numCtx is served by what is
// loaded now. Without a context asked for, one we loaded serves at
// whatever context we chose (so clients never cause a reload); one another
// client loaded serves only at the model's own context.
func (s *scheduler) hit(md *model, numCtx int) bool {
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
func (s *scheduler) ctxFor(md *model, numCtx int) int {
	switch {
	case numCtx > 0:
		return numCtx
	case md.ctxAuto:
		if n := maxContext(md, s.roomFor(md)); n > 0 {
			return n
		}
		return min(minAutoCtx, md.ctxCeiling())
	}
	return md.numCtx
}

// roomFor is what md may take with the models that stay loaded: the
// budget less every loaded model but md and those the model-count limit
// forces out anyway, and never more than the card has free.
func (s *scheduler) roomFor(md *model) uint64 {
	loaded := slices.DeleteFunc(s.entries(), func(e evict.Entry) bool { return e.Name == md.inst.Name })
	forced := 0
	if n := s.maxLoaded(); n > 0 {
		forced = max(0, len(loaded)+1-n)
	}
	var staying, leaving uint64
	gone := map[string]bool{}
	for _, e := range evict.Order(loaded, s.tune.policy)[:min(forced, len(evict.Order(loaded, s.tune.policy)))] {
		gone[e.Name] = true
	}
	for _, e := range loaded {
		if gone[e.Name] {
			leaving += e.Bytes
		} else {
			staying += e.Bytes
		}
	}
	room := s.limits().Budget
	room = max(room, staying) - staying
	if lim := s.limits(); lim.HasDevice {
		dev := lim.DeviceRoom + leaving
		if md.state == Loaded {
			dev += md.size
		}
		room = min(room, dev)
	}
	return room
}

// touch records a use of md now.
func (s *scheduler) touch(md *model) {
	now := s.now()
	md.lastUsed = now
	md.uses++
	// The policy sees the previous credit and this use's time: LRFU decays
	// the old count to now, GDSF adds to the clock.
	e := evict.Entry{Name: md.inst.Name, Bytes: md.size, Uses: md.uses, LastUsed: now, Credit: md.credit}
	s.tune.policy.Touch(&e, s.clock)
	md.credit = e.Credit
}

// maxLoaded is the model-count limit for the eviction policy: 0 for none.
func (s *scheduler) maxLoaded() int { return max(s.tune.MaxLoaded, 0) }

func (s *scheduler) countLimit() string {
	if n := s.maxLoaded(); n > 0 {
		return fmt.Sprintf("at most %d models", n)
	}
	return "no model-count limit"
}

// budget resolves the configured budget against the card's size.
func (s *scheduler) budget() uint64 { return s.tune.Budget.Budget(s.conn.vram.Total) }

// limits are the bounds for the next load.
func (s *scheduler) limits() evict.Limits {
	lim := evict.Limits{Budget: s.budget(), MaxLoaded: s.maxLoaded()}
	if v := s.conn.vram; v.Source == SourceNVML {
		lim.HasDevice = true
		if v.Free > s.tune.SafetyMargin {
			lim.DeviceRoom = v.Free - s.tune.SafetyMargin
		}
	}
	return lim
}

// shedLimits are the bounds what is loaded must keep.
func (s *scheduler) shedLimits() evict.Limits {
	return evict.Limits{Budget: s.budget(), MaxLoaded: s.maxLoaded()}
}

// entries are the loaded models as the eviction policy sees them.
func (s *scheduler) entries() []evict.Entry {
	var out []evict.Entry
	for _, md := range s.cat.models {
		if md.state != Loaded {
			continue
		}
		out = append(out, evict.Entry{
			Name: md.inst.Name, Bytes: md.size, LastUsed: md.lastUsed, Uses: md.uses,
			Credit: md.credit, Pinned: md.pinned, Busy: s.busy(md),
		})
	}
	return out
}

// transition applies a state change; an invalid one is a bug, logged
// loudly but not fatal, so the app keeps running.
func (s *scheduler) transition(md *model, to State) {
	if md == nil {
		return
	}
	if err := md.transition(to); err != nil {
		s.log.Error("state machine", "err", err)
		md.state = to
	}
}

func names(es []evict.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name
	}
	return out
}

func isEmbedding(caps []string) bool {
	return slices.Contains(caps, "embedding") && !slices.Contains(caps, "completion")
}
