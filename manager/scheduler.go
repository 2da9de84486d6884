package manager

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

	// Set when it runs.
	began   time.Time
	need    uint64
	victims []evict.Entry
	step    int // victims unloaded so far
	evicted []string
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

// failure is the memory of failed loads of one model at one context length.
type failure struct {
	count int
	at    time.Time
	until time.Time
	err   string
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
	failed map[string]failure
	paused bool
	clock  float64 // the eviction policy's aging value
}

func newScheduler(cat *catalogue, conn *connection, tune *tuning, fx Effects, now func() time.Time, log *slog.Logger) *scheduler {
	return &scheduler{cat: cat, conn: conn, tune: tune, fx: fx, now: now, log: log,
		leases: map[uint64]*lease{}, failed: map[string]failure{}}
}

func (s *scheduler) id() uint64 { s.nextID++; return s.nextID }

// OnLoad asks for name to be loaded (at numCtx, 0 for the model's own).
func (s *scheduler) OnLoad(w *waiter, name, reason string, numCtx int) {
	md := s.cat.lookup(name)
	if md == nil && s.cat.listed {
		s.fx.Reply(w, result{err: s.cat.unknown(name)})
		return
	}
	if md != nil {
		name = md.inst.Name
		ctx := s.ctxFor(md, numCtx)
		if md.state == Loaded && md.loadedCtx == ctx {
			s.touch(md)
			s.fx.Reply(w, s.grant(w, md, result{already: true}))
			return
		}
		if err := s.backingOff(md, ctx); err != nil {
			s.fx.Reply(w, result{err: err})
			return
		}
	}
	s.enqueue(&op{kind: opLoad, name: name, numCtx: numCtx, reason: reason, waiters: []*waiter{w}})
}

// OnUnload asks for name to be unloaded.
func (s *scheduler) OnUnload(w *waiter, name, reason string) {
	if md := s.cat.lookup(name); md != nil {
		name = md.inst.Name
	} else if s.cat.listed {
		s.fx.Reply(w, result{err: s.cat.unknown(name)})
		return
	}
	s.enqueue(&op{kind: opUnload, name: name, reason: reason, waiters: []*waiter{w}})
}

// enqueue joins o to an equal op pending, or queues it, and runs what can run.
func (s *scheduler) enqueue(o *op) {
	for _, q := range s.pending() {
		if q.kind == o.kind && q.name == o.name && q.numCtx == o.numCtx && !q.shed {
			q.waiters = append(q.waiters, o.waiters...)
			q.restore = q.restore && o.restore
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
	s.queue = slices.DeleteFunc(s.queue, func(o *op) bool { return len(o.waiters) == 0 && !o.restore && !o.shed })
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
// the catalogue): a smaller budget sheds models at once.
func (s *scheduler) OnSettings() { s.shed("over the new budget"); s.pump() }

// OnListed runs what waited for the catalogue.
func (s *scheduler) OnListed() { s.pump() }

// OnPoll reconciles the card with what the server reports.
func (s *scheduler) OnPoll(ps []Running) {
	s.reconcile(ps)
	s.shed("")
	s.pump()
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
	ctx := s.ctxFor(md, o.numCtx)
	if md.state == Loaded && md.loadedCtx == ctx {
		s.touch(md)
		s.answer(o, md, result{already: true})
		return actDone
	}
	if err := s.backingOff(md, ctx); err != nil {
		s.answerAll(o, result{err: err}) // not news: the failure is in the history
		return actDone
	}
	if !md.hasDetails {
		s.fail(o, fmt.Errorf("%s: no details from the server: %w", o.name, errors.Join(md.showErr, ErrLoadFailed)))
		return actDone
	}
	need, calibrated := s.cat.need(md, ctx, s.conn.version)
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
	if o.shed && !slices.ContainsFunc(evict.Shed(s.entries(), s.shedLimits(), s.tune.policy), func(e evict.Entry) bool { return e.Name == md.inst.Name }) {
		return actDone // the card fits again without this eviction
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
	size := md.size
	md.size, md.loadedCtx = 0, 0
	kind := EventUnloaded
	if o.shed {
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
	key := failKey(md, o.numCtx)
	if err != nil {
		md.lastErr = err.Error()
		s.transition(md, Failed)
		// A server that went away (stopped, killed, restarting) is not
		// the model's failure: once it is back, the model may be tried.
		if !errors.Is(err, ErrUnreachable) {
			f := s.failed[key]
			f.count++
			f.at, f.err = s.now(), err.Error()
			f.until = f.at.Add(min(backoffBase<<(f.count-1), backoffMax))
			s.failed[key] = f
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
	delete(s.failed, key)
	md.lastErr = ""
	s.transition(md, Loaded)
	md.loadedCtx = o.numCtx
	s.touch(md)
	s.reconcile(ps)
	if md.state == Loaded && md.size > 0 && !loading(ps, md.inst.Name) {
		s.cat.calib[calibKey(md.inst.Digest, o.numCtx, s.conn.version)] = md.size
	}
	s.fx.Emit(Event{Kind: EventLoaded, Model: o.name, Reason: o.reason, Bytes: md.size, Duration: took})
	s.answer(o, md, result{evicted: o.evicted})
	s.fx.Persist()
	s.shed("")
	s.pump()
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
			reason: fmt.Sprintf("%s: %s of ours loaded, budget %s, at most %d models", why, fmtBytes(s.cat.ours()), fmtBytes(s.budget()), s.tune.MaxLoaded)})
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
			md.loadedCtx = r.ContextLength
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
	for _, w := range o.waiters {
		s.fx.Reply(w, s.grant(w, md, r))
	}
	o.waiters = nil
}

func (s *scheduler) answerAll(o *op, r result) {
	for _, w := range o.waiters {
		s.fx.Reply(w, r)
	}
	o.waiters = nil
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

// backingOff refuses a load that failed lately, until its backoff ends.
func (s *scheduler) backingOff(md *model, numCtx int) error {
	f, ok := s.failed[failKey(md, numCtx)]
	if !ok || !s.now().Before(f.until) {
		return nil
	}
	return fmt.Errorf("%s failed to load %s ago (%s); not trying again for %s: %w", md.inst.Name,
		s.now().Sub(f.at).Round(time.Second), f.err, f.until.Sub(s.now()).Round(time.Second), ErrLoadFailed)
}

// retryAt is when md may be tried again at its own context length (zero
// when it may now).
func (s *scheduler) retryAt(md *model) time.Time {
	if f, ok := s.failed[failKey(md, md.numCtx)]; ok && s.now().Before(f.until) {
		return f.until
	}
	return time.Time{}
}

func failKey(md *model, numCtx int) string {
	id := md.inst.Digest
	if id == "" {
		id = md.inst.Name
	}
	return fmt.Sprintf("%s@%d", id, numCtx)
}

func (s *scheduler) ctxFor(md *model, numCtx int) int {
	if numCtx > 0 {
		return numCtx
	}
	return md.numCtx
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

// budget resolves the configured budget against the card's size.
func (s *scheduler) budget() uint64 { return s.tune.Budget.Budget(s.conn.vram.Total) }

// limits are the bounds for the next load.
func (s *scheduler) limits() evict.Limits {
	lim := evict.Limits{Budget: s.budget(), MaxLoaded: s.tune.MaxLoaded}
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
	return evict.Limits{Budget: s.budget(), MaxLoaded: s.tune.MaxLoaded}
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
