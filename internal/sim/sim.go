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
)

// Model is one catalogue entry: what a load of it occupies.
type Model struct {
	Name  string
	Bytes uint64
}

// Catalogue maps model names to models.
type Catalogue map[string]Model

// Request is one request of a trace: at offset At from the trace's start,
// an agent needs Model.
type Request struct {
	At    time.Duration
	Model string
	Agent string // who asked; informative only
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

// Config is one policy under test.
type Config struct {
	// Label names the row in a table ("gdsf (ours)", "lru", ...).
	Label  string
	Policy evict.Policy
	// Limits bound what the policy may keep loaded (the manager's: budget
	// and max loaded; Ollama's: the card's room and 3 models).
	Limits evict.Limits
	// KeepAlive > 0 unloads a model idle that long (Ollama's keep_alive);
	// the manager keeps models until it needs the room, so 0.
	KeepAlive time.Duration
	// Prepare, if set, runs before each request's plan with the request's
	// index: Belady uses it to look ahead.
	Prepare func(i int)
}

// Result is what a replay measured.
type Result struct {
	Label       string
	Requests    int
	Loads       int
	BytesLoaded uint64
	// Violations counts loads after which the resident set was over the
	// Budget given to Replay (not the policy's own limit, which may be
	// looser, as Ollama's is).
	Violations int
	// Failed counts requests no plan could serve.
	Failed int
	Peak   uint64
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

// Replay runs tr through c, counting budget violations against budget.
func Replay(cat Catalogue, tr Trace, c Config, budget uint64) (Result, error) {
	res := Result{Label: c.Label, Requests: len(tr.Requests)}
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
		if e, ok := loaded[r.Model]; ok {
			touch(e, now)
			continue
		}
		if c.Prepare != nil {
			c.Prepare(i)
		}
		entries := make([]evict.Entry, 0, len(loaded))
		for _, e := range loaded {
			entries = append(entries, *e)
		}
		// Map order must not leak into ties.
		slices.SortFunc(entries, func(a, b evict.Entry) int { return cmp.Compare(a.Name, b.Name) })
		victims, err := evict.Plan(entries, m.Bytes, c.Limits, c.Policy)
		if err != nil {
			res.Failed++
			continue
		}
		for _, v := range victims {
			delete(loaded, v.Name)
			clock = c.Policy.Evicted(v, clock)
		}
		e := &evict.Entry{Name: m.Name, Bytes: m.Bytes}
		loaded[m.Name] = e
		touch(e, now)
		res.Loads++
		res.BytesLoaded += m.Bytes
		var used uint64
		for _, e := range loaded {
			used += e.Bytes
		}
		res.Peak = max(res.Peak, used)
		if used > budget {
			res.Violations++
		}
	}
	return res, nil
}

// OllamaRule is Ollama's scheduler as a policy (server/sched.go
// findRunnerToUnload): evict the runner with the shortest keep_alive, ties
// by model path. Every model here has the default keep_alive, so it comes
// down to the name order; the digest path Ollama compares is as arbitrary
// as a name with respect to use.
type OllamaRule struct{}

func (OllamaRule) Name() string                                 { return "ollama" }
func (OllamaRule) Touch(*evict.Entry, float64)                  {}
func (OllamaRule) Before(a, b evict.Entry) bool                 { return a.Name < b.Name }
func (OllamaRule) Evicted(_ evict.Entry, clock float64) float64 { return clock }

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
