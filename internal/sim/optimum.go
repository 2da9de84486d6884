package sim

import (
	"fmt"
	"maps"
	"math/bits"
	"slices"

	"github.com/vramkeeper/vramkeeper/manager/evict"
)

// Objective picks what Optimum minimises first.
type Objective int

const (
	FewestLoads Objective = iota // loads, then bytes loaded
	FewestBytes                  // bytes loaded, then loads
)

// Optimum is the exact offline optimum of demand loading under lim (Budget
// and MaxLoaded; no device room): a shortest path over resident sets, where
// after each request the set must hold the requested model and may drop any
// others. Evicting early costs nothing here, so allowing any subset makes
// the search exact. The state space is every feasible set of up to
// MaxLoaded of the trace's distinct models (at most 64), a few hundred sets
// for the manager's limit of 2, so whole traces are searched, not samples.
func Optimum(cat Catalogue, tr Trace, lim evict.Limits, obj Objective) (Result, error) {
	names := tr.Distinct()
	if len(names) > 64 {
		return Result{}, fmt.Errorf("optimum: %d distinct models, at most 64", len(names))
	}
	if lim.MaxLoaded <= 0 || lim.MaxLoaded > 4 {
		return Result{}, fmt.Errorf("optimum: max loaded %d, want 1..4 to keep the search small", lim.MaxLoaded)
	}
	size := make([]uint64, len(names))
	idx := map[string]int{}
	for i, n := range names {
		m, ok := cat[n]
		if !ok {
			return Result{}, fmt.Errorf("optimum: %q: %w", n, errUnknownModel)
		}
		size[i], idx[n] = m.Bytes, i
	}
	feasible := func(set uint64) bool {
		if bits.OnesCount64(set) > lim.MaxLoaded {
			return false
		}
		var b uint64
		for s := set; s != 0; s &= s - 1 {
			b += size[bits.TrailingZeros64(s)]
		}
		return b <= lim.Budget
	}
	type cost struct {
		loads int
		bytes uint64
	}
	less := func(a, b cost) bool {
		if obj == FewestBytes {
			if a.bytes != b.bytes {
				return a.bytes < b.bytes
			}
			return a.loads < b.loads
		}
		if a.loads != b.loads {
			return a.loads < b.loads
		}
		return a.bytes < b.bytes
	}
	fits := map[uint64]bool{}
	isFeasible := func(set uint64) bool {
		f, ok := fits[set]
		if !ok {
			f = feasible(set)
			fits[set] = f
		}
		return f
	}
	cur := map[uint64]cost{0: {}}
	res := Result{Label: "optimum", Requests: len(tr.Requests)}
	for i, r := range tr.Requests {
		bit := uint64(1) << idx[r.Model]
		if !isFeasible(bit) {
			res.Failed++ // no policy can serve it either
			continue
		}
		next := map[uint64]cost{}
		for set, c := range cur {
			nc := c
			if set&bit == 0 {
				nc.loads++
				nc.bytes += size[idx[r.Model]]
			}
			// Keep any subset of what was loaded, plus the requested model.
			rest := set &^ bit
			for sub := rest; ; sub = (sub - 1) & rest {
				s := sub | bit
				if isFeasible(s) {
					if old, ok := next[s]; !ok || less(nc, old) {
						next[s] = nc
					}
				}
				if sub == 0 {
					break
				}
			}
		}
		if len(next) == 0 {
			return res, fmt.Errorf("optimum: request %d: no feasible set", i)
		}
		cur = next
	}
	best, first := cost{}, true
	for _, k := range slices.Sorted(maps.Keys(cur)) {
		if c := cur[k]; first || less(c, best) {
			best, first = c, false
		}
	}
	res.Loads, res.BytesLoaded = best.loads, best.bytes
	return res, nil
}
