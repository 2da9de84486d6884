package manager

import (
	"log/slog"
	"slices"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/serving"
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
	Load(op uint64, req serving.LoadRequest, within time.Duration)
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
	// Persist saves p: the scheduler's part of the state file (use,
	// yield, backoffs); the measured sizes are the catalogue's to add.
	Persist(p persisted)
	// Record saves p as Persist does, then reports OnRecorded(id) once it
	// is on disk (or could not be written): a yield acts only once what
	// it will do is recorded.
	Record(p persisted, id uint64)
	// Changed reports that what a snapshot shows of model changed (its
	// place on the card, its holds, its backoff); "" for the scheduler's
	// own state (a yield, a pause, the load that runs).
	Changed(model string)
	// Used reports a use of model, which snapshots show at the next poll.
	Used(model string)
}

// installedModels is what the scheduler asks of the installed models; the
// catalogue answers. What it says is a copy: the scheduler changes the
// catalogue only through calibrate, forget and track.
type installedModels interface {
	// spec describes the model installed as name (":latest" may be left
	// off); false when none is.
	spec(name string) (spec, bool)
	// listState says whether a listing succeeded, whether one is on its
	// way, and why the last one failed.
	listState() (listed, listing bool, err error)
	// unknown explains a name it does not hold.
	unknown(name string) error
	// needAt is what name takes at numCtx: measured at an earlier load
	// (true) or estimated.
	needAt(name string, numCtx int) (uint64, bool)
	// calibrate records what a load of name at numCtx measured.
	calibrate(name string, numCtx int, bytes uint64)
	// forget drops a model the server no longer has.
	forget(name string)
	// track adds a model the server has loaded but did not list, so its
	// bytes show; it reports whether the model was new to it.
	track(name, digest string) bool
}

// card is the last reading of the card; the connection answers.
type cardState interface {
	reading() card.VRAM
	// others is what other programs hold on it (NVML only).
	others() uint64
}

// spec is what the catalogue says of a model, as a plan uses it.
type spec struct {
	name, digest string
	numCtx       int  // the context length it loads at unless asked otherwise
	ctxAuto      bool // its context is picked at each load to fit the room
	fit          ctxFit
	need         uint64 // at numCtx: measured (calibrated) or estimated
	calibrated   bool
	pinned       bool
	embedding    bool
	// hasDetails: enough to rank it; detailed: /api/show's, enough to
	// estimate it; showing: a read of /api/show is on its way.
	hasDetails, detailed, showing bool
	showErr                       error
	estErr                        string
}

// slot is the scheduler's record of one model: its place on the card and
// its use. Only the scheduler writes it; others read copies.
type slot struct {
	live
	use
}

// target is a model as a plan sees it: the catalogue's spec, copied when
// the plan began, and the scheduler's own slot.
type target struct {
	spec
	*slot
}

// Deadlines. A load's grows with its bytes (see loadDeadline).
const (
	unloadDeadline = time.Minute
	// recentUse: a model used this recently is worth putting back after a
	// failed load evicted it, and restoring after it was given back to
	// other programs.
	recentUse = 5 * time.Minute
	// Failure backoff: doubles from backoffBase per failure in a row.
	backoffBase = 30 * time.Second
	backoffMax  = 10 * time.Minute
)

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

// purpose is why an op exists. It decides whether the op is a load or an
// unload, whether it may evict, whether it runs once nobody waits for it,
// and what its outcome is called in the history. Each word means one thing:
// a put-back undoes a failed load's evictions, a restore undoes a yield.
type purpose int

const (
	// loadRequested: callers asked for the model (Load, Acquire,
	// BestModelForTask); once none waits, the op is not run.
	loadRequested purpose = iota
	// reload: the model's context length changed in the settings.
	reload
	// putBack: a model a failed load evicted goes back on the card. It
	// never evicts another, and its failure is not held against the model.
	putBack
	// restore: a model given back goes back on the card (the user's
	// Restore, or other programs released the memory); the history calls
	// it restored. Like a put-back it never evicts.
	restore

	// unloadRequested: callers asked for the unload (Unload).
	unloadRequested
	// shed: the card is over the limits (budget, model count); the
	// history calls it an eviction.
	shed
	// giveBack: other programs need the card; the model is yielded and
	// restored once they release it.
	giveBack
	// yield: the user gave the whole GPU back (Yield).
	yield
)

func (p purpose) kind() opKind {
	if p >= unloadRequested {
		return opUnload
	}
	return opLoad
}

// putsBack: the op puts a model back that was on the card before.
func (p purpose) putsBack() bool { return p == putBack || p == restore }

// op is one load or unload, queued until it can run.
type op struct {
	id      uint64
	why     purpose
	name    string
	numCtx  int // load: the context length asked for (0: the model's own)
	reason  string
	waiters []*waiter
	// shared: callers of another purpose joined the op (a request joined a
	// put-back, or the scheduler's own reload joined a request): it runs
	// whether or not anyone waits, and it may evict.
	shared bool
	// refreshed: the server was read again since the op reached the front.
	refreshed bool

	// group: the op is part of a yield or a restore, answered together.
	group *group

	// Set when it runs. loading: the load itself was asked of the server
	// (any victims are off).
	began   time.Time
	loading bool
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

func (o *op) kind() opKind { return o.why.kind() }

// gentle: the op puts a model back and nothing else rides on it, so it
// never evicts another model and its failure is not the model's.
func (o *op) gentle() bool { return o.why.putsBack() && !o.shared }

// forCallers: only its callers want the op; once none waits it is dropped.
func (o *op) forCallers() bool {
	return (o.why == loadRequested || o.why == unloadRequested) && !o.shared
}

// conditional: the unload makes room within the limits (shed) or for
// other programs (giveBack), so it is dropped when the card fits without it.
func (o *op) conditional() bool { return o.why == shed || o.why == giveBack }

// yields: the unload gives the card back; the model is remembered to be
// restored.
func (o *op) yields() bool { return o.why == giveBack || o.why == yield }

// join adds o's callers to q, an equal op already pending.
func (q *op) join(o *op) {
	q.waiters = append(q.waiters, o.waiters...)
	if q.why != o.why && !(q.why.putsBack() && o.why.putsBack()) {
		q.shared = true
	}
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
	evicted  []string // the models unloaded for it (a load's victims, a yield's models)
	restored []string // the models a restore put back
	numCtx   int      // the context length the model is loaded at
	already  bool     // it was loaded; nothing was done
	lease    uint64   // the hold taken, 0 for none
	err      error
}

// tuning is the settings with the policy they name resolved.
type tuning struct {
	Settings
	policy evict.Policy
}

type scheduler struct {
	cat  installedModels
	card cardState
	tune tuning
	fx   Effects
	now  func() time.Time
	log  *slog.Logger

	slots map[string]*slot
	// active are the slots loading, loaded or unloading: what plans
	// iterate, so they cost what is on the card, not what is installed.
	active map[string]*slot

	queue  []*op
	cur    *op
	nextID uint64
	// changes counts state transitions; a slot keeps the count at its
	// last one, so a poll of the server (stamped with the count when it
	// began) can tell the models it may predate (see reconcile).
	changes uint64
	leases  map[uint64]*lease
	failed  map[loadKey]failure
	paused  bool
	clock   float64 // the eviction policy's aging value
	// touched is the entry touch hands the policy (see touch).
	touched evict.Entry

	// handedBack: the user gave the GPU back (Yield) and loads are refused
	// until Restore. yielded: models to restore, by the user's Restore or,
	// for those unloaded because other programs took the card, once they
	// release it. yielding: the user's yield is recorded and not done (a
	// restart finishes it); yieldGroup is the one under way here.
	handedBack bool
	yielded    []yielded
	yielding   bool
	yieldGroup *group
}

// newScheduler starts from what a state file kept: the models' use, a
// yield and the backoffs still running.
func newScheduler(cat installedModels, card cardState, tune tuning, fx Effects, now func() time.Time, log *slog.Logger, saved persisted) *scheduler {
	s := &scheduler{cat: cat, card: card, tune: tune, fx: fx, now: now, log: log,
		slots: map[string]*slot{}, active: map[string]*slot{},
		leases: map[uint64]*lease{}, failed: map[loadKey]failure{},
		handedBack: saved.HandedBack, yielded: saved.Yielded, yielding: saved.HandedBack && saved.Yielding}
	for name, u := range saved.Models {
		s.slotOf(name).use = use{lastUsed: u.LastUsed, uses: u.Uses}
	}
	s.resumeBackoffs(saved.Failures)
	return s
}

func (s *scheduler) id() uint64 { s.nextID++; return s.nextID }

// slotOf is name's slot, made idle on first use.
func (s *scheduler) slotOf(name string) *slot {
	sl := s.slots[name]
	if sl == nil {
		sl = &slot{live: live{state: Idle}}
		s.slots[name] = sl
	}
	return sl
}

// find is the model installed as name, as a plan sees it.
func (s *scheduler) find(name string) (target, bool) {
	sp, ok := s.cat.spec(name)
	if !ok {
		return target{}, false
	}
	return target{sp, s.slotOf(sp.name)}, true
}

// transition applies a state change; an invalid one is a bug, logged
// loudly but not fatal, so the app keeps running.
func (s *scheduler) transition(name string, to State) {
	sl := s.slots[name]
	if sl == nil {
		return
	}
	if err := sl.transition(to); err != nil {
		s.log.Error("state machine", "model", name, "err", err)
		sl.state = to
	}
	s.changes++
	sl.changed = s.changes
	if to == Idle || to == Failed {
		delete(s.active, name)
	} else {
		s.active[name] = sl
	}
	s.fx.Changed(name) // and what comes with a transition: size, context, error
}

// setCur makes o the op that runs (nil: none); a load that runs shows in
// snapshots.
func (s *scheduler) setCur(o *op) {
	if was := s.cur; was != nil && was.kind() == opLoad || o != nil && o.kind() == opLoad {
		s.fx.Changed("")
	}
	s.cur = o
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
