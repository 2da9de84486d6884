// Package manager keeps Ollama models inside a VRAM budget: it discovers
// installed models, estimates what each needs before loading it, picks the
// best one for a task, and loads and evicts so the card never overflows.
//
// One goroutine (Run) owns all state. Callers and workers send it typed
// events (a request, a load done, a poll result, a release...) and wait on
// reply channels of their own. Run hands each event to the scheduler
// (scheduler*.go: every load and unload is decided there, as a plain value
// tested without goroutines), the catalogue (catalogue.go: what is
// installed and what it needs) or the connection (connection.go: the
// server and the card). Slow work (HTTP to the server, disk writes) runs in
// goroutines Run owns and stops, each with a deadline, so the owner never
// blocks on I/O.
package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/predict"
	"github.com/vramkeeper/vramkeeper/manager/score"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
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
	// Prefetcher reads predicted models' files into the page cache; nil
	// takes prefetch.Warmer (tests slow it down to see it stopped).
	Prefetcher Prefetcher
	// WarmStart names a task whose best model is loaded once at start,
	// after discovery, when none is loaded; "" loads nothing. For the
	// long-running tray and serve, not one-shot commands.
	WarmStart string
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
	// ErrTimedOut: the server did not finish a load or unload within its
	// deadline; the request was cancelled.
	ErrTimedOut = errors.New("timed out")
	// ErrYielded: the GPU was given back (Yield); nothing loads until
	// Restore.
	ErrYielded = errors.New("VRAM Keeper gave the GPU back: restore it first (vramkeeper restore, or Restore in the tray)")
	// ErrSpilled: with gpu_only, the model does not fit on the GPU.
	ErrSpilled = errors.New("does not fit on the GPU")
)

// Deadlines of the owner's own reads.
const (
	readDeadline     = 15 * time.Second // /api/ps and the card
	discoverDeadline = 2 * time.Minute  // the list and every /api/show
	abandonDeadline  = 30 * time.Second
	// showParallel bounds concurrent /api/show calls: enough to hide
	// latency, few enough not to stall a server that is busy loading.
	showParallel = 4
)

// Manager is the owner of all model state. Create it with New, start Run in
// a goroutine, and call its methods from anywhere.
type Manager struct {
	rt    Runtime
	gpu   GPU
	now   func() time.Time
	log   *slog.Logger
	every struct{ refresh, poll time.Duration }

	events   chan any      // to the owner
	stopping chan struct{} // closed when Run begins to stop
	done     chan struct{} // closed when Run has returned
	started  atomic.Bool
	snap     atomic.Pointer[pubState]
	hub      *hub
	store    *store
	// timeline keeps the last hour of polls and decisions for the charts;
	// it locks itself, so readers need not ask the owner.
	timeline *timeline.Ring
	// ranks are the rankings made so far; callers read them without
	// asking the owner, so they lock themselves too.
	ranks rankings

	// Touched only by the Run goroutine.
	tune  tuning
	cat   catalogue
	conn  connection
	sched *scheduler
	// Answers sent after the next publish: to requests, and to calls
	// waiting on a channel of their own.
	replies []reply
	wakes   []wake
	spawn   func(func(context.Context))
	workCtx context.Context // the workers'; cancelled when Run stops
	warm    warming
	// Waiters for Refresh, and whether a listing or poll is on its way.
	listWaiters, pollWaiters []chan error
	polling                  bool
	warmStart                string // WarmStart, until it has been done
	// What changed since the last snapshot, and what that one was made at
	// (see publish); used are the models whose use changed since the last
	// poll, retrying those whose views show a retry time.
	changed  changes
	pub      published
	used     map[string]struct{}
	retrying map[string]time.Time
	order    []*model // the models in the last snapshot, by name
	views    viewList // their views, in that order
	// names are the tables' task and role names, for snapshots.
	names struct{ tasks, roles []string }
	// verify: check each snapshot against one built from scratch (tests).
	verify    atomic.Bool
	verifyErr atomic.Pointer[error]
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
		rt:       opt.Runtime,
		gpu:      opt.GPU,
		now:      opt.Now,
		log:      opt.Logger,
		events:   make(chan any),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
		store:    newStore(opt.StateDir, opt.Logger),
		tune:     tuning{Settings: set, policy: policy},
		conn:     connection{vram: VRAM{Source: SourceEstimated}},
		timeline: timeline.New(0, 0),
		warm:     warming{predict: predict.New(), use: opt.Prefetcher},
		used:     map[string]struct{}{},
		retrying: map[string]time.Time{},
	}
	m.every.refresh, m.every.poll = opt.RefreshEvery, opt.PollEvery
	m.names.tasks, m.names.roles = set.Tables.TaskNames(), set.Tables.RoleNames()
	m.warmStart = opt.WarmStart
	m.hub = newHub(500, readHistory(m.store.historyPath, 500, m.log), m.log)
	p, err := loadPersisted(m.store.statePath)
	if err != nil {
		m.log.Warn("saved state not read whole", "err", err)
	}
	details, err := loadCatalog(m.store.catalogPath)
	if err != nil {
		m.log.Warn("model details will be read again", "err", err)
	}
	m.cat = newCatalogue(p.Calibrations, details)
	m.cat.ch = &m.changed
	// A yield outlives a restart: nothing comes back until the user says
	// so; and so do the use counts and the backoffs.
	m.sched = newScheduler(&m.cat, &m.conn, m.tune, effects{m}, m.now, m.log, p)
	m.cat.dev = m.conn.device(m.sched.onGPU())
	m.publish(true)
	return m, nil
}

// Run owns the state until ctx is cancelled; it returns after every
// goroutine it started has stopped, and every call made after it returns
// fails with ErrStopped at once.
func (m *Manager) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("manager: Run called twice")
	}
	defer close(m.done)
	workCtx, cancel := context.WithCancel(context.Background())
	m.workCtx = workCtx
	var wg sync.WaitGroup
	m.spawn = func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(workCtx) }()
	}
	storeDone := make(chan struct{})
	storeCtx, stopStore := context.WithCancel(context.Background())
	go func() { defer close(storeDone); m.store.run(storeCtx) }()
	defer func() {
		close(m.stopping) // workers stop reporting
		cancel()
		wg.Wait()
		m.sched.OnStop(ErrStopped)
		m.failRefresh(ErrStopped)
		m.publish(true)
		m.flushReplies()
		m.hub.stop()
		stopStore() // it writes what is pending first
		<-storeDone
	}()

	m.discover()
	m.poll()
	refresh := time.NewTicker(m.every.refresh)
	defer refresh.Stop()
	poll := time.NewTicker(m.every.poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-m.events:
			m.step(ev)
		case <-refresh.C:
			m.discover()
			m.scanResidency()
			m.settled(false)
		case <-poll.C:
			m.poll()
			m.sched.OnTick()
			m.maybePrefetch()
			m.settled(false)
		}
	}
}

// step is the owner's work for one event: handle it, then publish what it
// changed and answer the callers it settled.
func (m *Manager) step(ev any) {
	m.handle(ev)
	if _, read := ev.(evRead); read {
		return // an agent's ranking costs no snapshot
	}
	_, poll := ev.(evPolled)
	m.settled(poll)
}

// settled follows every event: what derives from the card is brought in
// step, a snapshot shows what changed (a model's use at a poll), and then
// the callers are answered.
func (m *Manager) settled(poll bool) {
	m.settle()
	m.publish(poll)
	m.flushReplies()
	m.learn()
}

// The owner's events. Callers send requests; workers report outcomes.
type (
	evLoad struct {
		w                  *waiter
		name, reason, task string
		numCtx             int
	}
	evUnload struct {
		w            *waiter
		name, reason string
	}
	evCancel    struct{ w *waiter }
	evYield     struct{ w *waiter }
	evRestore   struct{ w *waiter }
	evRelease   struct{ id uint64 }
	evRefreshed struct {
		op      uint64
		ps      []Running
		err     error
		vram    VRAM
		vramErr error
	}
	evLoaded struct {
		op   uint64
		ps   []Running
		err  error
		took time.Duration
	}
	evUnloaded struct {
		op   uint64
		name string
		err  error
		took time.Duration
	}
	evPolled struct {
		ps      []Running
		err     error
		version string
		vram    VRAM
		vramErr error
	}
	evListed struct {
		results []shown
		err     error
	}
	evRefresh struct{ list, poll chan error }
	evShown   struct{ shown }
	evApply   struct {
		f     func(*Settings)
		reply chan error
	}
	evPause struct {
		paused bool
		reply  chan error
	}
	evPin struct {
		name   string
		pinned bool
		reply  chan error
	}
	// evRead runs f on the owner to read state (rankings' inputs); f
	// changes nothing a snapshot shows, so no snapshot follows it.
	evRead struct{ f func() }
)

// handle is the owner loop's switch: each event goes to what owns its part
// of the state.
func (m *Manager) handle(ev any) {
	s := m.sched
	switch e := ev.(type) {
	case evLoad:
		m.busy()
		m.warm.seen = append(m.warm.seen, predict.Obs{Kind: predict.Request, Model: m.canonicalName(e.name), Task: e.task})
		s.OnLoad(e.w, e.name, e.reason, e.numCtx)
	case evUnload:
		m.busy()
		s.OnUnload(e.w, e.name, e.reason)
	case evPrefetched:
		m.prefetched(e)
	case evResidency:
		m.residency(e)
	case evCancel:
		select {
		case r := <-e.w.reply: // answered already: give back what it got
			if r.lease != 0 {
				s.OnRelease(r.lease)
			}
		default:
			s.OnCancel(e.w)
		}
	case evRelease:
		s.OnRelease(e.id)
	case evYield:
		m.busy()
		s.OnYield(e.w)
	case evRestore:
		m.busy()
		s.OnRestore(e.w)
	case evRefreshed:
		m.readCard(e.vram, e.vramErr)
		m.serverAnswered(e.err)
		s.OnRefreshed(e.op, e.ps, e.err)
	case evLoaded:
		s.OnLoaded(e.op, e.ps, e.err, e.took)
	case evUnloaded:
		s.OnUnloaded(e.op, e.name, e.err, e.took)
	case evPolled:
		m.polled(e)
	case evListed:
		m.listed(e)
	case evShown:
		m.shown(e)
	case evRefresh:
		m.listWaiters = append(m.listWaiters, e.list)
		m.pollWaiters = append(m.pollWaiters, e.poll)
		m.discover()
		m.poll()
	case evApply:
		m.apply(e)
	case evPause:
		s.OnPaused(e.paused)
		m.wake(e.reply, nil)
	case evPin:
		md := m.cat.lookup(e.name)
		if md == nil {
			m.wake(e.reply, m.cat.unknown(e.name))
			return
		}
		// A new slice: published snapshots hold the old one.
		m.tune.Pinned = slices.DeleteFunc(slices.Clone(m.tune.Pinned), func(n string) bool { return n == md.inst.Name })
		if e.pinned {
			m.tune.Pinned = append(m.tune.Pinned, md.inst.Name)
		}
		md.pinned = e.pinned
		m.changed.model(md.inst.Name)
		m.changed.header() // the settings' pinned list
		m.wake(e.reply, nil)
	case evRead:
		e.f()
	default:
		m.log.Error("manager: unknown event", "type", fmt.Sprintf("%T", ev))
	}
}

// canonicalName is the catalogue's name for name (tag added), or name.
func (m *Manager) canonicalName(name string) string {
	if md := m.cat.lookup(name); md != nil {
		return md.inst.Name
	}
	return name
}

// settle keeps what derives from the card in step: estimates assume the
// device the models run on. Once the models are listed and the card read,
// it starts the warm start.
func (m *Manager) settle() (reevaluated bool) {
	d, cards := m.conn.device(m.sched.onGPU()), m.conn.vram.cardTotals()
	if d != m.cat.dev || !slices.Equal(cards, m.cat.cards) || m.cat.restale || m.cat.inferSaved() {
		m.cat.dev, m.cat.cards, m.cat.restale = d, cards, false
		m.cat.evaluateAll(m.tune.Settings) // every view changes
		reevaluated = true
	}
	if m.warmStart != "" && m.cat.listed && m.conn.known && m.conn.up && !m.polling {
		task := m.warmStart
		m.warmStart = ""
		if len(m.sched.activeNames()) > 0 {
			return reevaluated // something is loaded: the first request will not wait
		}
		m.spawn(func(ctx context.Context) {
			c, err := m.bestModel(ctx, task, "", "warm start: the best model for "+task)
			if err != nil {
				m.log.Warn("warm start loaded nothing", "task", task, "err", err)
				return
			}
			m.log.Info("warm start", "task", task, "model", c.Model)
		})
	}
	return reevaluated
}

func (m *Manager) apply(e evApply) {
	next := m.tune.Settings
	next.Pinned = slices.Clone(next.Pinned)
	e.f(&next)
	next, p, err := next.withDefaults()
	if err != nil {
		m.wake(e.reply, err)
		return
	}
	old := m.tune.Settings
	m.tune = tuning{Settings: next, policy: p}
	m.changed.header() // Snapshot().Settings: every field, whichever changed
	if !reflect.DeepEqual(old.Tables, next.Tables) {
		m.names.tasks, m.names.roles = next.Tables.TaskNames(), next.Tables.RoleNames()
		m.cat.gen++ // rankings follow the tables
	}
	// What a change costs is what it changes: the models it re-estimates,
	// and the loaded ones the scheduler looks at again.
	was := map[string]int{}
	for _, name := range m.sched.activeNames() {
		if md := m.cat.models[name]; md != nil {
			was[name] = md.numCtx
		}
	}
	m.cat.reevaluate(old, next)
	m.sched.OnSettings(m.tune, was)
	m.wake(e.reply, nil)
}

// readCard records a reading of the card.
func (m *Manager) readCard(v VRAM, err error) {
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			m.conn.vramErr = err.Error()
			m.log.Warn("GPU read failed", "err", err)
		}
		return
	}
	m.conn.vramErr = ""
	if ours := m.sched.ours(); ours != m.conn.oursAtRead {
		m.conn.oursAtRead = ours
		m.changed.header() // what other programs hold
	}
	if !m.conn.vram.Equal(v) {
		if m.conn.vram.cardTotals() != nil || v.cardTotals() != nil {
			m.changed.everyModel() // where each model would go (placement)
		}
		m.conn.vram = v
		m.changed.header()
		m.emit(Event{Kind: EventVRAM, Bytes: v.Used})
	}
}

// serverAnswered records whether the server answered; when it comes back,
// the models are listed again (it may have been restarted with others).
func (m *Manager) serverAnswered(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) && m.sched.status().loadRunning {
		// From v0.32 /api/ps waits for a load in progress: slow, not down.
		m.log.Debug("Ollama slow to answer while it loads", "err", err)
		return
	}
	wasDown := m.conn.known && !m.conn.up
	was := m.conn
	e := m.conn.setUp(err == nil, err)
	if m.conn.up != was.up || m.conn.err != was.err {
		m.changed.header() // whether Ollama answers, and why not
	}
	if e != nil {
		m.emit(*e)
	}
	if err == nil && wasDown {
		m.discover()
	}
}

// poll reads /api/ps, the server's version and the card.
func (m *Manager) poll() {
	if m.polling || m.spawn == nil {
		return
	}
	m.polling = true
	// /api/ps already proves the server is up; the version is asked once
	// per (re)connection, not on every poll.
	needVersion := m.conn.version == "" || !m.conn.up
	m.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, readDeadline)
		defer cancel()
		var e evPolled
		e.ps, e.err = m.rt.Running(ctx)
		if e.err == nil && needVersion {
			e.version, e.err = m.rt.Version(ctx)
		}
		e.vram, e.vramErr = m.gpu.Read(ctx)
		m.report(e)
	})
}

func (m *Manager) polled(e evPolled) {
	m.polling = false
	if e.version != "" && e.version != m.conn.version {
		m.conn.version, m.cat.version = e.version, e.version
		m.changed.header()
		m.cat.evaluateAll(m.tune.Settings) // measured sizes are per version
	}
	m.readCard(e.vram, e.vramErr)
	m.serverAnswered(e.err)
	if e.err == nil {
		m.sched.OnPoll(e.ps)
	}
	m.sample()
	for _, ch := range m.pollWaiters {
		m.wake(ch, e.err)
	}
	m.pollWaiters = nil
}

// discover lists the installed models and shows the new or changed ones,
// without loading anything.
func (m *Manager) discover() {
	if m.cat.listing || m.spawn == nil {
		return
	}
	m.cat.listing = true
	known := map[string]string{}
	for n, md := range m.cat.models {
		if md.detailed {
			known[n] = md.inst.Digest
		}
	}
	cached := maps.Clone(m.cat.details)
	m.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, discoverDeadline)
		defer cancel()
		list, err := m.rt.List(ctx)
		var results []shown
		if err == nil {
			results = m.showAll(ctx, list, known, cached)
		}
		m.report(evListed{results: results, err: err})
	})
}

func (m *Manager) showAll(ctx context.Context, list []Installed, known map[string]string, cached map[string]Details) []shown {
	out := make([]shown, len(list))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(showParallel)
	for i, inst := range list {
		out[i].inst = inst
		if d, ok := known[inst.Name]; ok && d == inst.Digest {
			continue // unchanged: keep what we have
		}
		if det, ok := cached[inst.Digest]; ok && inst.Digest != "" {
			det.Name = inst.Name // the same manifest may be installed under several names
			out[i].det = det
			continue
		}
		if det, ok := inst.listed(); ok {
			// The list says enough to rank it: /api/show waits until its
			// estimate is needed or discovery is done (fill).
			out[i].det, out[i].listed = det, true
			continue
		}
		g.Go(func() error {
			det, err := m.rt.Show(gctx, inst.Name)
			if err != nil {
				err = fmt.Errorf("show %s: %w", inst.Name, err)
			}
			out[i].det, out[i].err = det, err
			return nil // one broken model must not hide the others
		})
	}
	_ = g.Wait()
	return out
}

func (m *Manager) listed(e evListed) {
	m.cat.listing = false
	m.cat.listErr = e.err
	for _, ch := range m.listWaiters {
		m.wake(ch, e.err)
	}
	m.listWaiters = nil
	m.serverAnswered(e.err)
	if e.err == nil {
		changed, cacheChanged := m.cat.merge(e.results, m.tune.Settings, m.sched.isActive)
		if cacheChanged {
			m.store.saveCatalog(maps.Clone(m.cat.details))
		}
		if changed {
			m.emit(Event{Kind: EventModelsChange, Reason: fmt.Sprintf("%d models installed", len(e.results))})
		}
		m.fill(m.cat.undetailed()...)
	}
	m.sched.OnListed()
}

// fill reads /api/show for models the list alone described, a few at a
// time, so their estimates follow discovery without holding it up.
func (m *Manager) fill(names ...string) {
	var todo []Installed
	for _, n := range names {
		if md := m.cat.models[n]; md != nil && !md.detailed && !md.showing {
			md.showing = true
			todo = append(todo, md.inst)
		}
	}
	if len(todo) == 0 || m.spawn == nil {
		return
	}
	m.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, discoverDeadline)
		defer cancel()
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(showParallel)
		for _, inst := range todo {
			g.Go(func() error {
				det, err := m.rt.Show(gctx, inst.Name)
				if err != nil {
					err = fmt.Errorf("show %s: %w", inst.Name, err)
				}
				m.report(evShown{shown{inst: inst, det: det, err: err}})
				return nil
			})
		}
		_ = g.Wait()
	})
}

// shown takes one model's /api/show answer read after discovery.
func (m *Manager) shown(e evShown) {
	md := m.cat.models[e.inst.Name]
	if md == nil || md.inst.Digest != e.inst.Digest {
		return // deleted or changed since: the next listing tells
	}
	if m.cat.show(md, e.det, e.err, true, m.tune.Settings) {
		m.store.saveCatalog(maps.Clone(m.cat.details))
	}
	m.sched.OnListed()
}

// report is how workers hand results to the owner; it gives up when the
// manager is stopping.
func (m *Manager) report(ev any) {
	select {
	case m.events <- ev:
	case <-m.stopping:
	}
}

type (
	reply struct {
		w *waiter
		r result
	}
	wake struct {
		ch  chan error
		err error
	}
)

// wake answers a caller waiting on ch after the next publish.
func (m *Manager) wake(ch chan error, err error) {
	m.wakes = append(m.wakes, wake{ch, err})
}

func (m *Manager) failRefresh(err error) {
	for _, ch := range append(m.listWaiters, m.pollWaiters...) {
		m.wake(ch, err)
	}
	m.listWaiters, m.pollWaiters = nil, nil
}

// flushReplies answers the callers whose calls the last event settled,
// after the publish that shows it, so a caller that reads Snapshot after
// its call returns sees the state the call produced.
func (m *Manager) flushReplies() {
	for _, r := range m.replies {
		r.w.reply <- r.r
	}
	for _, w := range m.wakes {
		w.ch <- w.err
	}
	clear(m.replies) // let the results go
	m.replies, m.wakes = m.replies[:0], m.wakes[:0]
}

// emit records an event and sends it to subscribers.
func (m *Manager) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	m.log.Info("event", "kind", e.Kind, "model", e.Model, "for", e.For, "reason", e.Reason, "bytes", e.Bytes, "err", e.Error)
	m.hub.publish(e)
	m.observe(e)
	if e.historic() {
		m.store.appendHistory(e)
	}
	if k, ok := markKinds[e.Kind]; ok {
		_ = m.timeline.Mark(timeline.Mark{Time: e.Time, Kind: k, Model: e.Model})
	}
}

// markKinds are the events the chart marks.
var markKinds = map[EventKind]timeline.MarkKind{
	EventLoaded: timeline.MarkLoad, EventEvicted: timeline.MarkEviction, EventUnloaded: timeline.MarkUnload,
	EventUnloadedByOllama: timeline.MarkUnload, EventLoadFailed: timeline.MarkFailedLoad,
	EventYielded: timeline.MarkYield, EventRestored: timeline.MarkRestore,
}

// sample records the card as the last poll left it, for the charts.
func (m *Manager) sample() {
	s := timeline.Sample{Time: m.now(), Models: map[string]uint64{}, Others: m.conn.others(), Budget: m.sched.status().budget,
		Total: m.conn.vram.Total, Source: m.conn.vram.Source}
	for name, size := range m.sched.onCard() {
		if size > 0 {
			s.Models[name] = size
		}
	}
	_ = m.timeline.Add(s)
}

// effects carry out what the scheduler decides.
type effects struct{ m *Manager }

func (x effects) ReadServer(op uint64) {
	m := x.m
	m.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, readDeadline)
		defer cancel()
		e := evRefreshed{op: op}
		e.ps, e.err = m.rt.Running(ctx)
		e.vram, e.vramErr = m.gpu.Read(ctx)
		m.report(e)
	})
}

func (x effects) Load(op uint64, req LoadRequest, within time.Duration) {
	m := x.m
	m.spawn(func(ctx context.Context) {
		e := evLoaded{op: op}
		e.took, e.err = timed(ctx, within, func(ctx context.Context) error { return m.rt.Load(ctx, req) },
			"%s did not load within %s (load_timeout), so the request was cancelled", req.Name)
		if e.err == nil {
			rctx, cancel := context.WithTimeout(ctx, readDeadline)
			defer cancel()
			e.ps, e.err = m.rt.Running(rctx)
		}
		m.report(e)
	})
}

func (x effects) Unload(op uint64, name string, within time.Duration) {
	m := x.m
	m.spawn(func(ctx context.Context) {
		took, err := timed(ctx, within, func(ctx context.Context) error { return m.rt.Unload(ctx, name) },
			"%s was still loaded after %s", name)
		m.report(evUnloaded{op: op, name: name, err: err, took: took})
	})
}

// timed runs f within a deadline; when the deadline (not the manager's
// stop) ends it, the error says so with what ("%s ... %s": the name and
// the deadline) and wraps ErrTimedOut.
func timed(ctx context.Context, within time.Duration, f func(context.Context) error, what, name string) (time.Duration, error) {
	fctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	t := time.Now()
	err := f(fctx)
	if err != nil && fctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		err = fmt.Errorf(what+": %w", name, within, ErrTimedOut)
	}
	return time.Since(t), err
}

func (x effects) Abandon(name string) {
	m := x.m
	m.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, abandonDeadline)
		defer cancel()
		if err := m.rt.Unload(ctx, name); err != nil {
			m.log.Warn("could not make sure a timed-out load was dropped; the next poll will tell", "model", name, "err", err)
		}
	})
}

func (x effects) Discover() { x.m.discover() }

func (x effects) Show(name string) { x.m.fill(name) }

func (x effects) Reply(w *waiter, r result) {
	x.m.replies = append(x.m.replies, reply{w, r})
}

func (x effects) Emit(e Event) { x.m.emit(e) }

func (x effects) Changed(name string) {
	if name == "" {
		x.m.changed.header()
		return
	}
	x.m.changed.model(name)
}

func (x effects) Used(name string) { x.m.used[name] = struct{}{} }

func (x effects) Persist(p persisted) {
	p.Calibrations = maps.Clone(x.m.cat.calib) // the catalogue's part
	x.m.store.saveState(p)
}

// Subscribe returns a channel of events and a function that ends the
// subscription. A subscriber more than buf events behind is dropped: its
// channel is closed.
func (m *Manager) Subscribe(buf int) (<-chan Event, func()) {
	if buf <= 0 {
		buf = 64
	}
	return m.hub.subscribe(buf)
}

// History returns the most recent loads, unloads, evictions and failures.
func (m *Manager) History() []Event { return m.hub.recent() }

// Snapshot returns the latest published state; it is a value, safe to keep.
func (m *Manager) Snapshot() Snapshot { return m.snap.Load().snapshot() }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// fmtBytes is the one formatting of sizes in reasons and logs.
func fmtBytes(b uint64) string { return config.FormatBytes(b) }
