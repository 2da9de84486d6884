// Package sim replays request traces over a model catalogue to compare
// eviction policies. Online policies go through the manager's own pure code
// (evict.Plan with an evict.Policy) and the same bookkeeping the manager
// does around it (uses, LastUsed, the GDSF clock), so a number here is the
// number the manager would produce on that trace. Ollama's own rule and
// Belady's rule are simulator-only policies written against evict.Policy;
// Optimum is an exact offline search.
package sim

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/predict"
)

// Model is one catalogue entry: what a load of it occupies, and the size
// of its weight file (0: the same as Bytes).
type Model struct {
	Name      string
	Bytes     uint64
	FileBytes uint64
}

func (m Model) file() uint64 {
	if m.FileBytes == 0 {
		return m.Bytes
	}
	return m.FileBytes
}

// Catalogue maps model names to models.
type Catalogue map[string]Model

// Request is one request of a trace: at offset At from the trace's start,
// an agent needs Model for Task ("" when the trace has no tasks).
type Request struct {
	At    time.Duration
	Model string
	Agent string // who asked (the client)
	Task  string
}

// Trace is a named sequence of requests in time order.
type Trace struct {
	Name     string
	Requests []Request
}

// Distinct returns the models a trace asks for, sorted.
func (t Trace) Distinct() []string {
	var out []string
	for _, r := range t.Requests {
		if !slices.Contains(out, r.Model) {
			out = append(out, r.Model)
		}
	}
	slices.Sort(out)
	return out
}

// Planner chooses the loaded models to unload so that target can load.
type Planner func(loaded []evict.Entry, target Model, lim evict.Limits, p evict.Policy) ([]evict.Entry, error)

// ManagerPlan is the manager's planner, evict.Plan.
func ManagerPlan(loaded []evict.Entry, target Model, lim evict.Limits, p evict.Policy) ([]evict.Entry, error) {
	return evict.Plan(loaded, target.Bytes, lim, p)
}

// Predictor guesses the next requests: manager/predict's Predictor, or a
// baseline.
type Predictor interface {
	Observe(predict.Obs)
	Next(k int, q predict.Query) []predict.Guess
}

// Config is one policy under test.
type Config struct {
	// Label names the row in a table ("gdsf (ours)", "lru", ...).
	Label  string
	Policy evict.Policy
	// Plan chooses victims; nil means ManagerPlan.
	Plan Planner
	// Limits bound what the policy may keep loaded (the manager's: budget
	// and max loaded; Ollama's: the card's room and its model count).
	Limits evict.Limits
	// KeepAlive > 0 unloads a model idle that long (Ollama's keep_alive);
	// the manager keeps models until it needs the room, so 0.
	KeepAlive time.Duration
	// Prepare, if set, runs before each request's plan with the request's
	// index: Belady uses it to look ahead.
	Prepare func(i int)
	// Prefetch, when set (and the replay has Storage), makes a predictor
	// that sees every request, load and eviction; whenever the manager is
	// idle, the files of its best guesses among the models not loaded are
	// read into the page cache.
	Prefetch func() Predictor
	// PrefetchK is how many guesses are warmed, best first (default 1:
	// with a page cache of a few files, a second guess pushes out the
	// first).
	PrefetchK int
}

// Env is the machine a replay runs on.
type Env struct {
	// Budget is what violations are counted against.
	Budget uint64
	// Storage, if set, times swaps and tracks the page cache.
	Storage *Storage
}

// Result is what a replay measured.
type Result struct {
	Label       string
	Requests    int
	Loads       int
	BytesLoaded uint64
	// Violations counts loads after which the resident set was over the
	// Env's Budget (not the policy's own limit, which may be looser, as
	// Ollama's is).
	Violations int
	// Failed counts requests no plan could serve.
	Failed int
	Peak   uint64
	// With Storage: file bytes the loads read from disk and from the page
	// cache, the total swap time, and what prefetching read from disk.
	DiskBytes, CacheBytes, PrefetchBytes uint64
	SwapTime                             time.Duration
	// Foreseen counts loads of a model the prefetcher had among its
	// guesses when the request came.
	Foreseen int
}

// Ratio returns r's loads over the bound's, 0 when the bound has none.
func (r Result) Ratio(bound Result) float64 {
	if bound.Loads == 0 {
		return 0
	}
	return float64(r.Loads) / float64(bound.Loads)
}

var errUnknownModel = errors.New("model not in the catalogue")

// epoch anchors trace offsets to wall-clock times for Entry.LastUsed.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Replay runs tr through c on env.
func Replay(cat Catalogue, tr Trace, c Config, env Env) (Result, error) {
	res := Result{Label: c.Label, Requests: len(tr.Requests)}
	plan := c.Plan
	if plan == nil {
		plan = ManagerPlan
	}
	var cache *pageCache
	if env.Storage != nil {
		cache = newPageCache(env.Storage.CacheBytes)
	}
	var pred Predictor
	k := cmp.Or(c.PrefetchK, 1)
	if c.Prefetch != nil {
		pred = c.Prefetch()
	}
	var guesses []string // the prefetcher's guesses while idle before this request
	loaded := map[string]*evict.Entry{}
	// Like the manager's md.uses and md.credit: kept across evictions, so a
	// model's history survives its unloads.
	uses := map[string]int{}
	credit := map[string]float64{}
	var clock float64
	touch := func(e *evict.Entry, now time.Time) {
		// The manager's state.touch, step for step.
		e.LastUsed = now
		uses[e.Name]++
		e.Uses = uses[e.Name]
		t := evict.Entry{Name: e.Name, Bytes: e.Bytes, Uses: e.Uses, LastUsed: now, Credit: credit[e.Name]}
		c.Policy.Touch(&t, clock)
		e.Credit = t.Credit
		credit[e.Name] = t.Credit
	}
	observe := func(kind predict.Kind, r Request, model string) {
		if pred != nil {
			pred.Observe(predict.Obs{Kind: kind, Model: model, Client: r.Agent, Task: r.Task})
		}
	}
	for i, r := range tr.Requests {
		m, ok := cat[r.Model]
		if !ok {
			return res, fmt.Errorf("request %d: %q: %w", i, r.Model, errUnknownModel)
		}
		now := epoch.Add(r.At)
		if c.KeepAlive > 0 {
			for n, e := range loaded {
				if now.Sub(e.LastUsed) >= c.KeepAlive {
					delete(loaded, n) // expired: no clock change, nothing was chosen
				}
			}
		}
		observe(predict.Request, r, r.Model)
		var swap time.Duration
		if e, ok := loaded[r.Model]; ok {
			touch(e, now)
		} else if err := func() error {
			if c.Prepare != nil {
				c.Prepare(i)
			}
			entries := make([]evict.Entry, 0, len(loaded))
			for _, e := range loaded {
				entries = append(entries, *e)
			}
			// Map order must not leak into ties.
			slices.SortFunc(entries, func(a, b evict.Entry) int { return cmp.Compare(a.Name, b.Name) })
			victims, err := plan(entries, m, c.Limits, c.Policy)
			if err != nil {
				return err
			}
			for _, v := range victims {
				delete(loaded, v.Name)
				clock = c.Policy.Evicted(v, clock)
				observe(predict.Evict, r, v.Name)
			}
			e := &evict.Entry{Name: m.Name, Bytes: m.Bytes}
			loaded[m.Name] = e
			touch(e, now)
			observe(predict.Load, r, m.Name)
			res.Loads++
			res.BytesLoaded += m.Bytes
			if slices.Contains(guesses, m.Name) {
				res.Foreseen++
			}
			if cache != nil {
				warm := cache.has(m.Name)
				cold := m.file() - warm
				cache.fill(m.Name, m.file(), cold)
				res.DiskBytes += cold
				res.CacheBytes += warm
				swap = env.Storage.Cost.Time(cold, warm)
				res.SwapTime += swap
			}
			var used uint64
			for _, e := range loaded {
				used += e.Bytes
			}
			res.Peak = max(res.Peak, used)
			if used > env.Budget {
				res.Violations++
			}
			return nil
		}(); err != nil {
			res.Failed++
		}
		guesses = guesses[:0]
		if pred == nil || cache == nil || i+1 == len(tr.Requests) {
			continue
		}
		// Idle until the next request: prefetch the best guesses.
		idle := tr.Requests[i+1].At - r.At - swap - env.Storage.IdleAfter
		var exclude []string
		for n := range loaded {
			exclude = append(exclude, n)
		}
		for _, g := range pred.Next(k, predict.Query{Exclude: exclude}) {
			guesses = append(guesses, g.Model)
		}
		if idle <= 0 {
			continue
		}
		allowance := uint64(idle.Seconds() * env.Storage.PrefetchRate)
		for _, g := range guesses {
			gm := cat[g]
			got := cache.fill(g, gm.file(), allowance)
			res.PrefetchBytes += got
			allowance -= got
		}
	}
	return res, nil
}

// Belady evicts the model whose next request is furthest away (Belady
// 1966). Optimal for equal sizes and one slot constraint; with sizes and a
// count limit it is a strong offline heuristic, not a bound, which is why
// Optimum exists too.
type Belady struct {
	next map[string]int // model -> index of its next request, len(trace) if none
}

// NewBelady returns a Belady policy for tr and the Prepare hook that keeps
// its look-ahead current.
func NewBelady(tr Trace) (*Belady, func(int)) {
	b := &Belady{next: map[string]int{}}
	// nextAt[i] is the index of the next request for tr.Requests[i].Model after i.
	n := len(tr.Requests)
	nextAt := make([]int, n)
	last := map[string]int{}
	for i := n - 1; i >= 0; i-- {
		m := tr.Requests[i].Model
		if j, ok := last[m]; ok {
			nextAt[i] = j
		} else {
			nextAt[i] = n
		}
		last[m] = i
	}
	seen := map[string]int{} // model -> last index seen so far
	pos := 0
	prepare := func(i int) {
		for ; pos <= i; pos++ {
			seen[tr.Requests[pos].Model] = pos
		}
		clear(b.next)
		for m, j := range seen {
			b.next[m] = nextAt[j]
		}
	}
	return b, prepare
}

func (*Belady) Name() string                { return "belady" }
func (*Belady) Touch(*evict.Entry, float64) {}
func (b *Belady) Before(x, y evict.Entry) bool {
	nx, ny := b.next[x.Name], b.next[y.Name]
	if nx != ny {
		return nx > ny
	}
	return x.Name < y.Name
}
func (*Belady) Evicted(_ evict.Entry, clock float64) float64 { return clock }
