// Package manager keeps Ollama models inside a VRAM budget: it discovers
// installed models, estimates what each needs before loading it, picks the
// best one for a task, and loads and evicts so the card never overflows.
//
// One goroutine (Run) owns all state. Callers and workers send it typed
// events (a request, a load done, a poll result, a release...) and wait on
// reply channels of their own. Run hands each event (owner.go) to the
// scheduler (scheduler*.go: every load and unload is decided there, as a
// plain value tested without goroutines, which owns the records it decides
// on), the catalogue (catalogue.go: what is installed and what it needs)
// or the connection (connection.go: the server and the card), then
// publishes what changed (publish.go). Slow work (HTTP to the server, disk
// writes) runs in goroutines Run owns and stops, each with a deadline, so
// the owner never blocks on I/O (effects.go, discovery.go).
package manager

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/card"
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
	// Sent after the next publish: events to subscribers (so one that
	// reads Snapshot on an event sees the state it reports), answers to
	// requests and to calls waiting on a channel of their own.
	outbox  []Event
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
		conn:     connection{vram: card.VRAM{Source: card.SourceEstimated}},
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
