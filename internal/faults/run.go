package faults

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/vramkeeper/vramkeeper/internal/faultproxy"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/ollama"
)

// What every scenario's manager runs with: short deadlines, so that a fault
// costs seconds, and a fast poll, so that changes show at once.
const (
	// LoadTimeout is short, yet twice the longest load of these models
	// seen on a two-core machine busy with other builds (5 s), so that
	// only the injected faults hit it.
	LoadTimeout = 10 * time.Second
	PollEvery   = 200 * time.Millisecond
	NumCtx      = 2048
	MaxLoaded   = 3
	// slack is what a request may take beyond the manager's own deadlines
	// on a busy two-core machine: /api/ps reads, the owner's turn, a small
	// model's load.
	slack = 3 * time.Second
	// stuckGrace is how long past its deadline a request runs before it is
	// cut off (and counted stuck), so a scenario always ends.
	stuckGrace = 10 * time.Second
	// settleWithin bounds the wait for the manager to match /api/ps: a few
	// polls, or an op that may be running (a model put back) to end.
	settleWithin = LoadTimeout + slack
	// eventWithin bounds the wait for an event a call has caused.
	eventWithin = 2 * time.Second
	// sampleEvery is how often /api/ps is read for the budget check.
	sampleEvery = 20 * time.Millisecond
)

const gib = 1 << 30

// Scenario is one fault and what a user must see while it lasts.
type Scenario struct {
	Name string
	// Injected says what is done to the server, for the table.
	Injected string
	// Recovery says what "time to recover" measures here.
	Recovery string
	run      func(r *run) (outcome string)
}

// Result is what a scenario showed.
type Result struct {
	Name, Injected, Recovery string
	// Outcome is one line of what happened, as a user would tell it.
	Outcome string
	// Requests a user made: answered, refused in time with an error naming
	// the model, or still waiting past their deadline.
	Served, FailedCleanly, Stuck int
	// Samples of /api/ps taken in the background, and how many of them
	// showed more loaded than the budget.
	Samples, BudgetViolations int
	Peak, Budget              uint64
	// TimeToRecover: see Scenario.Recovery; 0 when nothing recovered.
	TimeToRecover time.Duration
	Took          time.Duration
	// Err lists every check that failed; nil when the scenario passed.
	Err error
}

// run is one scenario's harness: a manager over the proxy, the background
// /api/ps sampler, the events, the tally of requests and the failed checks.
type run struct {
	ctx   context.Context
	env   *Env
	name  string
	dir   string
	m     *manager.Manager
	proxy *faultproxy.Server

	mu          sync.Mutex
	res         Result
	problems    []error
	events      []manager.Event
	recoverFrom time.Time
	frozen      map[string]int // loads that reached Ollama, when counted early
}

// Run runs the scenario against env and returns what it showed; the
// scenario passed when Result.Err is nil.
func (s Scenario) Run(ctx context.Context, env *Env) Result {
	began := time.Now()
	res := Result{Name: s.Name, Injected: s.Injected, Recovery: s.Recovery}
	done := func(err error) Result {
		res.Err, res.Took = err, time.Since(began)
		return res
	}
	if err := env.reset(ctx); err != nil {
		return done(err)
	}
	dir, err := env.scratch(slug(s.Name))
	if err != nil {
		return done(err)
	}
	m, err := manager.New(manager.Options{
		Runtime: ollama.New(env.Proxy.URL, nil), GPU: env.GPU, StateDir: dir, PollEvery: PollEvery, Logger: env.Log,
		Settings: manager.Settings{MaxLoaded: MaxLoaded, NumCtx: NumCtx, LoadTimeout: LoadTimeout},
	})
	if err != nil {
		return done(err)
	}
	r := &run{ctx: ctx, env: env, name: s.Name, dir: dir, m: m, proxy: env.Proxy, res: res}

	// The manager, the event collector and the sampler run for the
	// scenario and are stopped, in that order reversed, before Run returns.
	mctx, stopManager := context.WithCancel(context.Background())
	managed := make(chan error, 1)
	go func() { managed <- m.Run(mctx) }()
	events, unsubscribe := m.Subscribe(4096)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for e := range events {
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
		}
	}()
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { defer close(sampled); r.sample(sctx) }()

	if err := m.Refresh(ctx); err != nil {
		r.fail("discovering the models through the proxy: %v", err)
	} else {
		outcome := s.run(r)
		r.mu.Lock()
		r.res.Outcome = outcome
		r.mu.Unlock()
		r.settled()
		r.loadedOnce()
	}

	stopSampling()
	<-sampled
	stopManager()
	if err := <-managed; err != nil {
		r.fail("manager: %v", err)
	}
	unsubscribe()
	<-collected
	r.mu.Lock()
	defer r.mu.Unlock()
	res = r.res
	return done(errors.Join(r.problems...))
}

func slug(name string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			return c
		}
		return '-'
	}, strings.ToLower(name))
}

// fail records a failed check.
func (r *run) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Errorf(format, args...))
}

// check records a failed check when ok is false.
func (r *run) check(ok bool, format string, args ...any) {
	if !ok {
		r.fail(format, args...)
	}
}

// faultOver marks when the fault ended (or, for one that never ends, when
// it took hold): the next request served after it ends the recovery.
func (r *run) faultOver() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recoverFrom = time.Now()
	r.res.TimeToRecover = 0
}

// request makes one call a user would make, cut off at within plus a
// grace, and tallies it: served; failed cleanly (an error within the
// deadline, naming model when one is given); or stuck (past within). It
// returns the call's error.
func (r *run) request(what, model string, within time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(r.ctx, within+stuckGrace)
	defer cancel()
	began := time.Now()
	err := f(ctx)
	took := time.Since(began)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case took > within:
		r.res.Stuck++
		r.problems = append(r.problems, fmt.Errorf("%s: stuck for %s past its %s deadline (err: %v)", what, (took-within).Round(time.Millisecond), within, err))
	case err == nil:
		r.res.Served++
		if !r.recoverFrom.IsZero() && r.res.TimeToRecover == 0 {
			r.res.TimeToRecover = time.Since(r.recoverFrom)
		}
	case model != "" && !strings.Contains(err.Error(), short(model)):
		r.problems = append(r.problems, fmt.Errorf("%s: the error does not name %s: %v", what, model, err))
	default:
		r.res.FailedCleanly++
	}
	return err
}

// short is a model's name without the default tag, as users write it.
func short(name string) string { return strings.TrimSuffix(name, ":latest") }

// load is a request for name through the manager.
func (r *run) load(what, name string, within time.Duration) error {
	return r.request(what, name, within, func(ctx context.Context) error {
		_, err := r.m.Load(ctx, name, "fault scenario")
		return err
	})
}

// waitFor polls cond until it holds; past within it records a failed
// check and returns false.
func (r *run) waitFor(what string, within time.Duration, cond func() bool) bool {
	if !r.poll(within, cond) {
		r.fail("%s: not within %s", what, within)
		return false
	}
	return true
}

// poll reports whether cond comes to hold within the time given.
func (r *run) poll(within time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(r.ctx, within)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// sample reads /api/ps straight from Ollama until ctx ends and counts the
// readings over the manager's budget.
func (r *run) sample(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ps, err := r.env.Ollama.Client.ListRunning(rctx)
		cancel()
		if err == nil { // the server may be down on purpose
			var sum uint64
			for _, m := range ps.Models {
				sum += uint64(max(m.SizeVRAM, m.Size, 0))
			}
			budget := r.m.Snapshot().Budget
			r.mu.Lock()
			r.res.Samples++
			r.res.Peak = max(r.res.Peak, sum)
			r.res.Budget = budget
			if sum > budget {
				r.res.BudgetViolations++
				if r.res.BudgetViolations == 1 {
					r.problems = append(r.problems, fmt.Errorf("/api/ps holds %s (%v), over the %s budget", config.FormatBytes(sum), names(ps.Models), config.FormatBytes(budget)))
				}
			}
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ollamaLoaded is what Ollama has loaded now, by name.
func (r *run) ollamaLoaded() ([]string, error) {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	ps, err := r.env.Ollama.Client.ListRunning(ctx)
	if err != nil {
		return nil, err
	}
	return names(ps.Models), nil
}

func names(ps []api.ProcessModelResponse) []string {
	var out []string
	for _, m := range ps {
		out = append(out, m.Name)
	}
	slices.Sort(out)
	return out
}

// managerLoaded is what the manager believes is loaded.
func (r *run) managerLoaded() []string {
	var out []string
	for _, v := range r.m.Snapshot().LoadedModels() {
		out = append(out, v.Name)
	}
	slices.Sort(out)
	return out
}

// settled checks the end state: the manager agrees with /api/ps, nothing
// is half loaded or unloaded, and no request holds a model any more.
func (r *run) settled() {
	var last string
	ok := r.waitFor("the manager's state matches /api/ps, with no op running and no lease held", settleWithin, func() bool {
		ps, err := r.ollamaLoaded()
		snap := r.m.Snapshot()
		last = fmt.Sprintf("/api/ps %v (err %v), manager %v, loading %q", ps, err, r.managerLoaded(), snap.Loading)
		if err != nil || !slices.Equal(ps, r.managerLoaded()) || snap.Loading != "" {
			return false
		}
		for _, v := range snap.Models {
			if v.InFlight > 0 || v.State == manager.Loading || v.State == manager.Unloading {
				last += fmt.Sprintf("; %s %s with %d lease(s)", v.Name, v.State, v.InFlight)
				return false
			}
		}
		return true
	})
	if !ok {
		r.fail("last seen: %s", last)
	}
}

// loadsAtOllama counts the loads that reached Ollama, per model.
func (r *run) loadsAtOllama() map[string]int {
	out := map[string]int{}
	for _, m := range Models {
		out[m.Name] = r.proxy.Count(faultproxy.Match{Model: m.Name, Intent: faultproxy.Load})
	}
	return out
}

// freeze counts the loads that reached Ollama now, for loadedOnce, before
// a step that loads outside this manager (the CLI).
func (r *run) freeze() {
	loads := r.loadsAtOllama()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frozen = loads
}

// loadedOnce checks that no load reached Ollama that the manager did not
// start: two requests for one model share one load, a poll does not
// trigger a reload, a reconnect does not load what is loaded.
func (r *run) loadedOnce() {
	r.mu.Lock()
	loads := maps.Clone(r.frozen)
	started := map[string]int{}
	for _, e := range r.events {
		if e.Kind == manager.EventLoadStarted {
			started[e.Model]++
		}
	}
	r.mu.Unlock()
	if loads == nil {
		loads = r.loadsAtOllama()
	}
	for name, n := range loads {
		r.check(n <= started[name], "%s: %d load(s) reached Ollama, the manager started %d", name, n, started[name])
	}
}

// event returns the first event of kind for model, and whether there is
// one. Events reach subscribers a moment after the call that caused them
// has returned, so it waits a little for one.
func (r *run) event(kind manager.EventKind, model string) (manager.Event, bool) {
	var found manager.Event
	ok := r.poll(eventWithin, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range r.events {
			if e.Kind == kind && (model == "" || e.Model == model) {
				found = e
				return true
			}
		}
		return false
	})
	return found, ok
}

// view is the manager's view of a model now.
func (r *run) view(name string) manager.ModelView {
	v, _ := r.m.Snapshot().Model(name)
	return v
}

// setBudget applies a budget to the manager.
func (r *run) setBudget(b uint64) {
	if err := r.m.Apply(r.ctx, manager.SettingsPatch{Budget: &config.Size{Bytes: b}}); err != nil {
		r.fail("setting the budget to %s: %v", config.FormatBytes(b), err)
	}
}

// estimate is what the manager expects name to take.
func (r *run) estimate(name string) uint64 { return r.view(name).EstimateBytes }

// ranked returns the models that suit task, best first, that fit the
// budget.
func (r *run) ranked(task string) []string {
	rs, err := r.m.Rank(task, "")
	if err != nil {
		r.fail("ranking %s: %v", task, err)
		return nil
	}
	var out []string
	for _, x := range rs {
		if r.view(x.Name).Fits {
			out = append(out, x.Name)
		}
	}
	return out
}

// bySize returns the installed models that can generate text, smallest
// estimate first.
func (r *run) bySize() []string {
	var out []string
	for _, v := range r.m.Snapshot().Models {
		if slices.Contains(v.Capabilities, "completion") {
			out = append(out, v.Name)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(r.estimate(a), r.estimate(b)) })
	return out
}

// sumEstimates is what names are expected to take together.
func (r *run) sumEstimates(names ...string) uint64 {
	var sum uint64
	for _, n := range names {
		sum += r.estimate(n)
	}
	return sum
}
