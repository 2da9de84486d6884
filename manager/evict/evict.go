// Package evict decides which loaded models to unload to make room for
// another. It is pure: a snapshot of the loaded set goes in, victims come
// out, so the policy is tested by tables and replayed by the trace simulator.
package evict

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Entry is one loaded model as the policy sees it.
type Entry struct {
	Name     string
	Bytes    uint64    // what it occupies now
	LastUsed time.Time // last request served or load
	Uses     int       // requests served since it was discovered
	// Credit is the policy's own per-entry value (GDSF's H), kept by the
	// caller between calls and updated through Policy.Touch.
	Credit float64
	Pinned bool // never evicted automatically
	Busy   bool // requests in flight: not evictable now
}

// Policy orders eviction candidates.
type Policy interface {
	Name() string
	// Touch updates e after a use (a hit or a load); clock is the policy's
	// aging value returned by the last Evicted.
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

func olderFirst(a, b Entry) bool {
	if !a.LastUsed.Equal(b.LastUsed) {
		return a.LastUsed.Before(b.LastUsed)
	}
	return a.Name < b.Name
}

// ByName returns the policy called name ("" is the default, GDSF).
func ByName(name string) (Policy, error) {
	switch name {
	case "", "gdsf":
		return GDSF{}, nil
	case "lru":
		return LRU{}, nil
	}
	return nil, fmt.Errorf("unknown eviction policy %q (known: gdsf, lru)", name)
}

// Limits bound the loaded set.
type Limits struct {
	Budget    uint64 // bytes our models may use together
	MaxLoaded int    // models loaded at once; 0 = no limit
	// DeviceRoom is what the driver says is free now minus a safety margin,
	// so other programs' VRAM counts; 0 with HasDevice false = unknown.
	DeviceRoom uint64
	HasDevice  bool
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
// fits next to what stays loaded. It evicts as few as the policy order allows
// and nothing when the model cannot fit even in an empty card.
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
	var freed uint64
	for i, v := range cands {
		freed += v.Bytes
		if fits(freed, i+1) {
			return cands[:i+1], nil
		}
	}
	if len(cands) == len(loaded) {
		return nil, ErrNoRoom
	}
	return nil, ErrBlocked
}
