// Package evict decides which loaded models to unload to make room for
// another. It is pure: a snapshot of the loaded set goes in, victims come
// out, so the policy is tested by tables and replayed by the trace simulator.
package evict

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Entry is one loaded model as the policy sees it.
type Entry struct {
	Name     string
	Bytes    uint64    // what it occupies now
	LastUsed time.Time // last request served or load
	Uses     int       // requests served since it was discovered
	// Credit is the policy's own per-entry value (GDSF's H, LRFU's decayed
	// frequency), kept by the caller between calls, across unloads too, and
	// updated through Policy.Touch.
	Credit float64
	Pinned bool // never evicted automatically
	Busy   bool // requests in flight: not evictable now
}

// Policy orders eviction candidates.
type Policy interface {
	Name() string
	// Touch updates e.Credit after a use (a hit or a load). The caller
	// passes Uses (this use counted), LastUsed set to the time of this use
	// and Credit as the last Touch left it (0 for a model never used); clock
	// is the policy's aging value returned by the last Evicted.
	Touch(e *Entry, clock float64)
	// Before reports whether a should be evicted before b.
	Before(a, b Entry) bool
	// Evicted returns the new clock after v is evicted.
	Evicted(v Entry, clock float64) float64
}

// LRU evicts the least recently used model first.
type LRU struct{}

func (LRU) Name() string                           { return "lru" }
func (LRU) Touch(*Entry, float64)                  {}
func (LRU) Before(a, b Entry) bool                 { return olderFirst(a, b) }
func (LRU) Evicted(_ Entry, clock float64) float64 { return clock }

// GDSF is Greedy-Dual-Size-Frequency (Cherkasova 1998): H = L + uses·cost/size,
// evict the lowest H, then L = H(victim). With cost proportional to the
// bytes a reload reads, cost/size is constant and H ranks by frequency with
// aging: a model used often survives a burst of one-off requests, which plain
// LRU does not, while L lets stale favourites age out.
type GDSF struct{}

func (GDSF) Name() string { return "gdsf" }
func (GDSF) Touch(e *Entry, clock float64) {
	e.Credit = clock + float64(max(e.Uses, 1))
}
func (GDSF) Before(a, b Entry) bool {
	if a.Credit != b.Credit {
		return a.Credit < b.Credit
	}
	return olderFirst(a, b)
}
func (GDSF) Evicted(v Entry, clock float64) float64 { return max(clock, v.Credit) }

// LRFU ranks models by a decayed count of their uses (Lee et al. 2001,
// "LRFU: a spectrum of policies that subsumes the least recently used and
// least frequently used policies"): every use adds 1, and every count decays
// by e^(−Δt/Tau). A long-lived favourite outranks a one-off, as with LFU,
// but a favourite that stops being asked for fades within a few Tau, so a
// change of working set (another project, another agent) ages out without
// waiting for other evictions, which GDSF's clock needs.
//
// The decayed count at time t is e^((K−t)/Tau) for a key K that does not
// change with t, so Credit stores K (in seconds) and entries compare by it
// without knowing the time: K' = Tau·ln(e^(K/Tau) + e^(t/Tau)) on a use at t.
// Sizes play no part: the goal is fewest loads, and a size-aware rank
// would trade loads of large models for loads of small ones.
type LRFU struct {
	// Tau is the decay time (the count halves every Tau·ln 2); 0 means
	// DefaultTau.
	Tau time.Duration
}

// DefaultTau is LRFU's default decay time: longer than an agent's pause
// between requests in a session (seconds to a few minutes), shorter than a
// change of task. On the standard traces (internal/sim) any Tau from 5 to
// 30 minutes is within 1 % of the best.
const DefaultTau = 10 * time.Minute

func (LRFU) Name() string { return "lrfu" }

func (p LRFU) Touch(e *Entry, _ float64) {
	now := e.LastUsed
	if now.IsZero() {
		now = time.Now() // caller without times: still a valid key
	}
	t := float64(now.UnixNano()) / 1e9
	if e.Credit == 0 {
		e.Credit = t // first use: a count of 1 now
		return
	}
	tau := p.Tau.Seconds()
	if tau <= 0 {
		tau = DefaultTau.Seconds()
	}
	hi, lo := max(e.Credit, t), min(e.Credit, t)
	e.Credit = hi + tau*math.Log1p(math.Exp((lo-hi)/tau)) // log-sum-exp, no overflow
}

func (LRFU) Before(a, b Entry) bool {
	if a.Credit != b.Credit {
		return a.Credit < b.Credit
	}
	return olderFirst(a, b)
}

func (LRFU) Evicted(_ Entry, clock float64) float64 { return clock }

func olderFirst(a, b Entry) bool {
	if !a.LastUsed.Equal(b.LastUsed) {
		return a.LastUsed.Before(b.LastUsed)
	}
	return a.Name < b.Name
}

// Default is the policy used when none is named: LRFU, the one that loads
// least on all three standard traces (docs/BENCHMARKS.md).
func Default() Policy { return LRFU{} }

// ByName returns the policy called name ("" is Default).
func ByName(name string) (Policy, error) {
	switch name {
	case "":
		return Default(), nil
	case "lrfu":
		return LRFU{}, nil
	case "gdsf":
		return GDSF{}, nil
	case "lru":
		return LRU{}, nil
	}
	return nil, fmt.Errorf("unknown eviction policy %q (known: lrfu, gdsf, lru)", name)
}

// Limits bound the loaded set.
type Limits struct {
	Budget    uint64 // bytes our models may use together
	MaxLoaded int    // models loaded at once; 0 = no limit
	// DeviceRoom is what the driver says is free now minus a safety margin,
	// so other programs' VRAM counts; 0 with HasDevice false = unknown.
	DeviceRoom uint64
	HasDevice  bool
	// Short is what the card must give back now because other programs
	// took it (Shed only).
	Short uint64
}

var (
	// ErrNeverFits: the model is larger than the budget on its own.
	ErrNeverFits = errors.New("larger than the budget")
	// ErrBlocked: it would fit, but only by evicting pinned or busy models.
	ErrBlocked = errors.New("no room without evicting pinned or busy models")
	// ErrNoRoom: other programs hold so much VRAM that it does not fit now,
	// even with all our unpinned models unloaded.
	ErrNoRoom = errors.New("not enough free VRAM: other programs use the rest of the card")
)

// Plan returns the models to unload, in order, so that a model of need bytes
// fits next to what stays loaded. It takes victims in policy order until the
// model fits, then keeps any victim that turns out not to be needed (see
// prune), and evicts nothing when the model cannot fit even in an empty card.
func Plan(loaded []Entry, need uint64, lim Limits, p Policy) ([]Entry, error) {
	if need > lim.Budget {
		return nil, ErrNeverFits
	}
	var used uint64
	for _, e := range loaded {
		used += e.Bytes
	}
	fits := func(freed uint64, n int) bool {
		if used-freed+need > lim.Budget {
			return false
		}
		if lim.MaxLoaded > 0 && len(loaded)-n+1 > lim.MaxLoaded {
			return false
		}
		return !lim.HasDevice || lim.DeviceRoom+freed >= need
	}
	if fits(0, 0) {
		return nil, nil
	}
	cands := order(loaded, p)
	var freed uint64
	for i, v := range cands {
		freed += v.Bytes
		if fits(freed, i+1) {
			return prune(cands[:i+1], freed, fits), nil
		}
	}
	if len(cands) == len(loaded) {
		return nil, ErrNoRoom
	}
	return nil, ErrBlocked
}

// prune drops victims whose eviction the others made unnecessary, most
// valuable (last in policy order) first. Taking victims in order alone can
// evict a small model only to find that a large one must go too, when the
// large one alone would have made room: with a budget of 7 and {big 5,
// small 1} loaded, a 2 needs only big gone, yet "small first" evicts both.
// Keeping small is free now and saves its reload later; measured on the
// standard traces (internal/sim) this is most of what separated the online
// policies from the offline optimum under the manager's 2-model limit.
func prune(victims []Entry, freed uint64, fits func(freed uint64, n int) bool) []Entry {
	out := slices.Clone(victims)
	for i := len(out) - 1; i >= 0; i-- {
		v := out[i]
		if fits(freed-v.Bytes, len(out)-1) {
			freed -= v.Bytes
			out = slices.Delete(out, i, i+1)
		}
	}
	return out
}

// Shed returns the models to unload, in order, so that what stays loaded
// fits the limits again: after the budget shrank, another client loaded a
// model, or other programs took memory (lim.Short: bytes the card must give
// back whatever the budget says). Victims come in policy order, never
// pinned or busy ones and never the last model loaded; as in Plan, a
// victim the others made unnecessary is kept. Nil when everything fits or
// nothing may go.
func Shed(loaded []Entry, lim Limits, p Policy) []Entry {
	var used uint64
	for _, e := range loaded {
		used += e.Bytes
	}
	fits := func(freed uint64, n int) bool {
		return used-freed <= lim.Budget && freed >= lim.Short &&
			(lim.MaxLoaded <= 0 || len(loaded)-n <= lim.MaxLoaded)
	}
	if fits(0, 0) {
		return nil
	}
	cands := order(loaded, p)
	var freed uint64
	for i, v := range cands {
		if i+1 == len(loaded) {
			break // the last model stays
		}
		freed += v.Bytes
		if fits(freed, i+1) {
			return prune(cands[:i+1], freed, fits)
		}
	}
	// It cannot fit: unload what may go anyway, which brings it closest.
	if n := min(len(cands), len(loaded)-1); n > 0 {
		return cands[:n]
	}
	return nil
}

// order returns the entries that may be evicted, first victim first.
func order(loaded []Entry, p Policy) []Entry {
	cands := slices.DeleteFunc(slices.Clone(loaded), func(e Entry) bool { return e.Pinned || e.Busy })
	slices.SortStableFunc(cands, func(a, b Entry) int {
		switch {
		case p.Before(a, b):
			return -1
		case p.Before(b, a):
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return cands
}
