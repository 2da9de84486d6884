package sim

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/evict"
)

func trace(models ...string) Trace {
	tr := Trace{Name: "t"}
	for i, m := range models {
		tr.Requests = append(tr.Requests, Request{At: time.Duration(i) * time.Second, Model: m})
	}
	return tr
}

// Three equal models, room for two. Belady's rule is optimal for equal
// sizes, so it and the exact search must agree, and the online policies'
// counts are worked out by hand.
func TestTinyTraces(t *testing.T) {
	eq := Catalogue{"a": {Name: "a", Bytes: 1}, "b": {Name: "b", Bytes: 1}, "c": {Name: "c", Bytes: 1}}
	sized := Catalogue{"big": {Name: "big", Bytes: 6}, "s1": {Name: "s1", Bytes: 2}, "s2": {Name: "s2", Bytes: 2}}
	two := evict.Limits{Budget: 10, MaxLoaded: 2}
	tests := []struct {
		name          string
		cat           Catalogue
		lim           evict.Limits
		tr            Trace
		lru, gdsf     int
		opt, optBytes uint64 // optimum loads, and bytes of the fewest-bytes optimum
	}{
		// a b c a b c: LRU always evicts the next one needed (6 loads);
		// the optimum keeps a and loads b/c alternately (4 loads).
		{"cyclic", eq, two, trace("a", "b", "c", "a", "b", "c"), 6, 6, 4, 4},
		// a used often, then b c b c: GDSF first keeps the frequent a and
		// thrashes b/c until its clock has aged a out (6 loads); LRU keeps
		// b and c at once (4, the optimum).
		{"frequency", eq, two, trace("a", "a", "a", "b", "c", "b", "c", "a"), 4, 6, 4, 4},
		// Only room for big alone or s1+s2: loading big always evicts both.
		{"sizes", sized, evict.Limits{Budget: 7, MaxLoaded: 2}, trace("s1", "s2", "big", "s1", "s2"), 5, 5, 5, 14},
		{"all hits", eq, two, trace("a", "b", "a", "b", "a"), 2, 2, 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []struct {
				pol  evict.Policy
				want int
			}{{evict.LRU{}, tc.lru}, {evict.GDSF{}, tc.gdsf}} {
				r, err := Replay(tc.cat, tc.tr, Config{Label: p.pol.Name(), Policy: p.pol, Limits: tc.lim}, Env{Budget: tc.lim.Budget})
				if err != nil {
					t.Fatal(err)
				}
				if r.Loads != p.want || r.Violations != 0 || r.Failed != 0 {
					t.Errorf("%s: loads %d (want %d), violations %d, failed %d", p.pol.Name(), r.Loads, p.want, r.Violations, r.Failed)
				}
			}
			opt, err := Optimum(tc.cat, tc.tr, tc.lim, FewestLoads)
			if err != nil {
				t.Fatal(err)
			}
			if uint64(opt.Loads) != tc.opt {
				t.Errorf("optimum loads %d, want %d", opt.Loads, tc.opt)
			}
			ob, err := Optimum(tc.cat, tc.tr, tc.lim, FewestBytes)
			if err != nil {
				t.Fatal(err)
			}
			if ob.BytesLoaded != tc.optBytes {
				t.Errorf("optimum bytes %d, want %d", ob.BytesLoaded, tc.optBytes)
			}
			b, prep := NewBelady(tc.tr)
			br, err := Replay(tc.cat, tc.tr, Config{Policy: b, Limits: tc.lim, Prepare: prep}, Env{Budget: tc.lim.Budget})
			if err != nil {
				t.Fatal(err)
			}
			if br.Loads < opt.Loads {
				t.Errorf("belady %d loads beats the exact optimum %d: the search is wrong", br.Loads, opt.Loads)
			}
			if tc.cat["a"].Bytes == 1 && br.Loads != opt.Loads {
				t.Errorf("equal sizes: belady %d loads, optimum %d", br.Loads, opt.Loads)
			}
		})
	}
}

// Ollama's rule uses the card's room, not our budget: the simulator must
// count the loads that leave more than the budget resident.
func TestViolationsCounted(t *testing.T) {
	cat := Catalogue{"a": {Name: "a", Bytes: 5}, "b": {Name: "b", Bytes: 3}}
	c := Config{Policy: OllamaRule{}, Limits: evict.Limits{Budget: 9, MaxLoaded: 3}}
	r, err := Replay(cat, trace("a", "b", "a"), c, Env{Budget: 7})
	if err != nil {
		t.Fatal(err)
	}
	if r.Loads != 2 || r.Violations != 1 || r.Peak != 8 {
		t.Errorf("got %+v, want 2 loads, 1 violation, peak 8", r)
	}
}

// keep_alive unloads idle models, costing a reload.
func TestKeepAliveExpires(t *testing.T) {
	cat := Catalogue{"a": {Name: "a", Bytes: 1}}
	tr := Trace{Requests: []Request{{At: 0, Model: "a"}, {At: time.Minute, Model: "a"}, {At: 10 * time.Minute, Model: "a"}}}
	r, err := Replay(cat, tr, Config{Policy: OllamaRule{}, Limits: evict.Limits{Budget: 9, MaxLoaded: 3}, KeepAlive: 5 * time.Minute}, Env{Budget: 9})
	if err != nil {
		t.Fatal(err)
	}
	if r.Loads != 2 {
		t.Errorf("loads %d, want 2", r.Loads)
	}
}

func TestUnknownModel(t *testing.T) {
	_, err := Replay(Catalogue{}, trace("x"), Config{Policy: evict.LRU{}, Limits: evict.Limits{Budget: 1}}, Env{Budget: 1})
	if !errors.Is(err, errUnknownModel) {
		t.Errorf("err = %v", err)
	}
}

// The standard experiment is deterministic, serves every request, and no
// online policy of ours beats the exact optimum or breaks the budget.
func TestStandard(t *testing.T) {
	s, err := Standard(600, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Catalogue) != 27 || len(s.Traces) != 3 {
		t.Fatalf("%d models, %d traces", len(s.Catalogue), len(s.Traces))
	}
	for _, tr := range s.Traces {
		rs, err := s.Run(tr)
		if err != nil {
			t.Fatal(err)
		}
		opt := rs[len(rs)-1]
		for _, r := range rs {
			if r.Failed != 0 {
				t.Errorf("%s/%s: %d failed", tr.Name, r.Label, r.Failed)
			}
			if strings.HasPrefix(r.Label, "ollama") {
				continue // looser limits than the optimum's: may beat it, and break the budget
			}
			if r.Loads < opt.Loads || r.Violations != 0 {
				t.Errorf("%s/%s: %d loads (optimum %d), %d violations", tr.Name, r.Label, r.Loads, opt.Loads, r.Violations)
			}
		}
		again, _ := s.Run(tr)
		if again[0] != rs[0] {
			t.Errorf("%s: not deterministic", tr.Name)
		}
	}
}

// Every alternative replays the standard traces; ours never breaks the
// budget; one model at a time cannot either (every requested model fits);
// each load reads its whole file, from disk or cache.
func TestAlternatives(t *testing.T) {
	s, err := Standard(600, 1)
	if err != nil {
		t.Fatal(err)
	}
	st := Storage{CacheBytes: 8 * gib, Cost: SwapCost{Fixed: time.Second, ColdPerGB: 1, WarmPerGB: 0.2}, PrefetchRate: 5e8, IdleAfter: 2 * time.Second}
	for _, tr := range s.Traces {
		rs, err := s.Compare(tr, st)
		if err != nil {
			t.Fatal(err)
		}
		alts := s.Alternatives()
		if len(rs) != len(alts) {
			t.Fatalf("%d results for %d alternatives", len(rs), len(alts))
		}
		for i, r := range rs {
			a := alts[i]
			one := a.Limits.MaxLoaded == 1 || strings.Contains(a.Label, "one group")
			if (a.Ours || one) && r.Violations != 0 {
				t.Errorf("%s/%s: %d budget violations", tr.Name, r.Label, r.Violations)
			}
			if r.Failed != 0 || r.Loads == 0 {
				t.Errorf("%s/%s: %d loads, %d failed", tr.Name, r.Label, r.Loads, r.Failed)
			}
			if r.SwapTime < time.Duration(r.Loads)*st.Cost.Fixed || r.DiskBytes+r.CacheBytes < uint64(r.Loads)*s.Catalogue["qwen2.5:0.5b"].FileBytes {
				t.Errorf("%s/%s: %d loads but %s and %d bytes read", tr.Name, r.Label, r.Loads, r.SwapTime, r.DiskBytes+r.CacheBytes)
			}
			if (a.Prefetch != nil) != (r.Foreseen > 0) {
				t.Errorf("%s/%s: foreseen %d loads", tr.Name, r.Label, r.Foreseen)
			}
		}
	}
}
