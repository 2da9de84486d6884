package evict

import (
	"errors"
	"math"
	"testing"
	"time"
)

const gib = 1 << 30

func at(min int) time.Time { return time.Date(2026, 1, 1, 0, min, 0, 0, time.UTC) }

func names(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func TestPlan(t *testing.T) {
	a := Entry{Name: "a", Bytes: 3 * gib, LastUsed: at(1)}
	b := Entry{Name: "b", Bytes: 2 * gib, LastUsed: at(2)}
	c := Entry{Name: "c", Bytes: 1 * gib, LastUsed: at(3)}
	pinnedA := a
	pinnedA.Pinned = true
	busyA := a
	busyA.Busy = true
	budget7 := Limits{Budget: 7 * gib}
	tests := []struct {
		name    string
		loaded  []Entry
		need    uint64
		lim     Limits
		want    []string
		wantErr error
	}{
		{"fits without eviction", []Entry{a, b}, 2 * gib, budget7, nil, nil},
		{"evicts least recently used first", []Entry{c, a, b}, 2 * gib, budget7, []string{"a"}, nil},
		{"evicts as many as needed", []Entry{a, b, c}, 6 * gib, budget7, []string{"a", "b"}, nil},
		{"evicts all for a budget-sized model", []Entry{a, b, c}, 7 * gib, budget7, []string{"a", "b", "c"}, nil},
		{"max loaded forces one out", []Entry{a, b}, 1 * gib, Limits{Budget: 7 * gib, MaxLoaded: 2}, []string{"a"}, nil},
		{"never fits evicts nothing", []Entry{a}, 8 * gib, budget7, nil, ErrNeverFits},
		{"pinned is skipped", []Entry{pinnedA, b, c}, 3 * gib, budget7, []string{"b"}, nil},
		{"busy is skipped", []Entry{busyA, b, c}, 3 * gib, budget7, []string{"b"}, nil},
		{"blocked by pinned", []Entry{pinnedA, b}, 5 * gib, budget7, nil, ErrBlocked},
		{"device room counts other programs", []Entry{a}, 2 * gib, Limits{Budget: 7 * gib, HasDevice: true, DeviceRoom: 1 * gib}, []string{"a"}, nil},
		{"device full even when empty", []Entry{c}, 3 * gib, Limits{Budget: 7 * gib, HasDevice: true, DeviceRoom: 1 * gib}, nil, ErrNoRoom},
		{"empty card", nil, 7 * gib, budget7, nil, nil},
		// LRU order is small then big, but evicting big alone makes room:
		// small is not needed gone and stays.
		{"keeps a victim it did not need", []Entry{{Name: "small", Bytes: 1 * gib, LastUsed: at(1)}, {Name: "big", Bytes: 5 * gib, LastUsed: at(2)}},
			3 * gib, budget7, []string{"big"}, nil},
		// With a count limit one must go anyway: the oldest one, since it alone suffices.
		{"count limit keeps the order", []Entry{{Name: "small", Bytes: 1 * gib, LastUsed: at(1)}, {Name: "big", Bytes: 4 * gib, LastUsed: at(2)}},
			2 * gib, Limits{Budget: 7 * gib, MaxLoaded: 2}, []string{"small"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Plan(tt.loaded, tt.need, tt.lim, LRU{})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if g := names(got); len(g) != len(tt.want) || (len(g) > 0 && !equal(g, tt.want)) {
				t.Fatalf("victims = %v, want %v", g, tt.want)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// GDSF keeps a frequently used model over a more recent one-off, where LRU
// evicts the favourite.
func TestGDSFKeepsFrequentModel(t *testing.T) {
	var clock float64
	fav := Entry{Name: "fav", Bytes: 3 * gib, LastUsed: at(1), Uses: 9}
	once := Entry{Name: "once", Bytes: 3 * gib, LastUsed: at(2), Uses: 1}
	GDSF{}.Touch(&fav, clock)
	GDSF{}.Touch(&once, clock)
	lim := Limits{Budget: 7 * gib}
	for _, tt := range []struct {
		p    Policy
		want string
	}{{GDSF{}, "once"}, {LRU{}, "fav"}} {
		got, err := Plan([]Entry{fav, once}, 3*gib, lim, tt.p)
		if err != nil || len(got) != 1 || got[0].Name != tt.want {
			t.Errorf("%s evicts %v (%v), want %s", tt.p.Name(), names(got), err, tt.want)
		}
	}
	// Aging: after evicting, the clock rises, so a fresh model's credit
	// catches up with an old favourite's.
	clock = GDSF{}.Evicted(once, clock)
	fresh := Entry{Name: "fresh", Uses: 1}
	GDSF{}.Touch(&fresh, clock)
	if fresh.Credit <= once.Credit {
		t.Errorf("fresh credit %v not above evicted %v", fresh.Credit, once.Credit)
	}
}

// LRFU: a decayed count. Each case touches "a" and "b" at the given
// minutes and says which one goes first.
func TestLRFU(t *testing.T) {
	p := LRFU{Tau: 10 * time.Minute}
	tests := []struct {
		name   string
		a, b   []int // minutes of each use
		victim string
	}{
		{"frequent beats a recent one-off", []int{0, 1, 2, 3}, []int{5}, "b"},
		{"one use each: recency decides, as LRU", []int{1}, []int{2}, "a"},
		{"a stale favourite fades", []int{0, 1, 2, 3}, []int{60, 61}, "a"},
		{"equal histories: older last use goes", []int{0, 2}, []int{1, 2}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			touch := func(name string, mins []int) Entry {
				e := Entry{Name: name, Bytes: 3 * gib}
				for i, m := range mins {
					e.Uses, e.LastUsed = i+1, at(m)
					p.Touch(&e, 0)
				}
				return e
			}
			a, b := touch("a", tt.a), touch("b", tt.b)
			got, err := Plan([]Entry{a, b}, 3*gib, Limits{Budget: 7 * gib, MaxLoaded: 2}, p)
			if err != nil || len(got) != 1 || got[0].Name != tt.victim {
				t.Errorf("evicts %v (%v), want %s (credits a %.1f, b %.1f)", names(got), err, tt.victim, a.Credit, b.Credit)
			}
		})
	}
	// The key must not overflow for real Unix times and long histories.
	e := Entry{Name: "x"}
	for i := range 10000 {
		e.Uses, e.LastUsed = i+1, at(0).Add(time.Duration(i)*time.Second)
		p.Touch(&e, 0)
	}
	if math.IsInf(e.Credit, 0) || math.IsNaN(e.Credit) {
		t.Fatalf("credit %v after 10000 uses", e.Credit)
	}
}

func TestByName(t *testing.T) {
	for _, n := range []string{"", "lrfu", "gdsf", "lru"} {
		if _, err := ByName(n); err != nil {
			t.Errorf("ByName(%q): %v", n, err)
		}
	}
	if p, _ := ByName(""); p.Name() != Default().Name() {
		t.Errorf("ByName(\"\") = %s, want the default %s", p.Name(), Default().Name())
	}
	if _, err := ByName("fifo"); err == nil {
		t.Error("ByName(fifo) accepted an unknown policy")
	}
}
