package sim

import (
	"slices"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/predict"
)

func TestPageCache(t *testing.T) {
	type fill struct {
		name      string
		size, add uint64
		added     uint64
	}
	cases := map[string]struct {
		cap   uint64
		fills []fill
		want  map[string]uint64
	}{
		"fits":            {10, []fill{{"a", 4, 4, 4}, {"b", 5, 5, 5}}, map[string]uint64{"a": 4, "b": 5}},
		"oldest goes":     {10, []fill{{"a", 4, 4, 4}, {"b", 5, 5, 5}, {"c", 3, 3, 3}}, map[string]uint64{"b": 5, "c": 3}},
		"reread refresh":  {10, []fill{{"a", 4, 4, 4}, {"b", 5, 5, 5}, {"a", 4, 4, 0}, {"c", 3, 3, 3}}, map[string]uint64{"a": 4, "c": 3}},
		"partial then":    {10, []fill{{"a", 8, 3, 3}, {"a", 8, 9, 5}}, map[string]uint64{"a": 8}},
		"larger than ram": {5, []fill{{"a", 4, 4, 4}, {"big", 8, 8, 5}}, map[string]uint64{"big": 5}},
		"no cache":        {0, []fill{{"a", 4, 4, 0}}, map[string]uint64{"a": 0}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pc := newPageCache(tc.cap)
			for i, f := range tc.fills {
				if got := pc.fill(f.name, f.size, f.add); got != f.added {
					t.Errorf("fill %d (%s): added %d, want %d", i, f.name, got, f.added)
				}
			}
			var used uint64
			for n, want := range tc.want {
				if got := pc.has(n); got != want {
					t.Errorf("%s: %d resident, want %d", n, got, want)
				}
				used += want
			}
			if pc.used != used || pc.used > tc.cap {
				t.Errorf("used %d, want %d (cap %d)", pc.used, used, tc.cap)
			}
		})
	}
}

// Two 4-byte files, room for one loaded model and one cached file: every
// load reads its file from disk, unless a prefetch warmed it in the idle
// time before the request.
func TestReplayStorage(t *testing.T) {
	cat := Catalogue{"a": {Name: "a", Bytes: 5, FileBytes: 4}, "b": {Name: "b", Bytes: 5, FileBytes: 4}}
	var tr Trace
	for i := range 20 {
		tr.Requests = append(tr.Requests, Request{At: time.Duration(i) * time.Minute, Model: []string{"a", "b"}[i%2]})
	}
	cost := SwapCost{Fixed: time.Second, ColdPerGB: 1e9, WarmPerGB: 1e8} // 1 s per cold byte, 0.1 s per warm one
	lim := evict.Limits{Budget: 9, MaxLoaded: 1}
	cases := map[string]struct {
		cfg       Config
		st        Storage
		disk, ram uint64
		swap      time.Duration
		prefetch  bool // some loads read prefetched files
	}{
		"cold every time": {Config{Policy: evict.LRU{}, Limits: lim}, Storage{CacheBytes: 4, Cost: cost},
			80, 0, 20*time.Second + 80*time.Second, false},
		"both cached": {Config{Policy: evict.LRU{}, Limits: lim}, Storage{CacheBytes: 8, Cost: cost},
			8, 72, 20*time.Second + 8*time.Second + 7200*time.Millisecond, false},
		"prefetch": {Config{Policy: evict.LRU{}, Limits: lim, Prefetch: func() Predictor { return predict.New() }},
			Storage{CacheBytes: 4, Cost: cost, PrefetchRate: 1, IdleAfter: time.Second}, 0, 0, 0, true},
		"no idle time": {Config{Policy: evict.LRU{}, Limits: lim, Prefetch: func() Predictor { return predict.New() }},
			Storage{CacheBytes: 4, Cost: cost, PrefetchRate: 1, IdleAfter: time.Hour}, 80, 0, 100 * time.Second, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := Replay(cat, tr, tc.cfg, Env{Budget: 9, Storage: &tc.st})
			if err != nil {
				t.Fatal(err)
			}
			if r.Loads != 20 || r.DiskBytes+r.CacheBytes != 80 {
				t.Fatalf("%d loads, %d + %d bytes read; want 20 loads of 4 bytes", r.Loads, r.DiskBytes, r.CacheBytes)
			}
			if tc.prefetch {
				// The first loads teach the predictor; then every file is warm.
				if r.DiskBytes > 16 || r.PrefetchBytes < 56 || r.Foreseen < 16 {
					t.Errorf("disk %d, prefetched %d, foreseen %d: want nearly all loads warmed", r.DiskBytes, r.PrefetchBytes, r.Foreseen)
				}
				return
			}
			if r.DiskBytes != tc.disk || r.CacheBytes != tc.ram || r.SwapTime != tc.swap || r.PrefetchBytes != 0 {
				t.Errorf("disk %d, cache %d, swap %s, prefetched %d; want %d, %d, %s, 0", r.DiskBytes, r.CacheBytes, r.SwapTime, r.PrefetchBytes, tc.disk, tc.ram, tc.swap)
			}
		})
	}
}

func names(es []evict.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func TestOllamaPlan(t *testing.T) {
	// x sorts before y and z in Ollama's (digest) order; check the premise.
	order := []string{"x", "y", "z"}
	slices.SortFunc(order, func(a, b string) int {
		if (OllamaRule{}).Before(evict.Entry{Name: a}, evict.Entry{Name: b}) {
			return -1
		}
		return 1
	})
	first, second := order[0], order[1]
	ent := func(n string, b uint64) evict.Entry { return evict.Entry{Name: n, Bytes: b} }
	cases := map[string]struct {
		loaded []evict.Entry
		need   uint64
		lim    evict.Limits
		want   []string
	}{
		"room":          {[]evict.Entry{ent(first, 2)}, 2, evict.Limits{Budget: 10, MaxLoaded: 2}, nil},
		"count reached": {[]evict.Entry{ent(first, 2), ent(second, 2)}, 2, evict.Limits{Budget: 10, MaxLoaded: 2}, []string{first}},
		"one at a time": {[]evict.Entry{ent(second, 2)}, 2, evict.Limits{Budget: 10, MaxLoaded: 1}, []string{second}},
		// Ollama unloads in its order until the model fits, even when the
		// second victim alone would have been enough (evict.Plan keeps
		// the first).
		"no take-back": {[]evict.Entry{ent(first, 1), ent(second, 6)}, 4, evict.Limits{Budget: 8, MaxLoaded: 3}, []string{first, second}},
		"no limit":     {[]evict.Entry{ent(first, 1), ent(second, 1), ent("w", 1)}, 1, evict.Limits{Budget: 8}, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v, err := OllamaPlan(tc.loaded, Model{Name: "new", Bytes: tc.need}, tc.lim, OllamaRule{})
			if err != nil || !slices.Equal(names(v), tc.want) {
				t.Errorf("victims %v, %v; want %v", names(v), err, tc.want)
			}
		})
	}
}

func TestSwapGroups(t *testing.T) {
	group := func(m string) string { return m[:1] } // "c1" is in group c
	loaded := []evict.Entry{{Name: "c1"}, {Name: "e1"}, {Name: "e2"}}
	cases := map[string]struct {
		g      SwapGroups
		target string
		want   []string
	}{
		"same group swaps":       {SwapGroups{Group: group}, "c2", []string{"c1"}},
		"other groups stay":      {SwapGroups{Group: group}, "e3", []string{"e1", "e2"}},
		"exclusive stops others": {SwapGroups{Group: group, Exclusive: true}, "x1", []string{"c1", "e1", "e2"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v, _ := tc.g.Plan(loaded, Model{Name: tc.target}, evict.Limits{}, nil)
			if !slices.Equal(names(v), tc.want) {
				t.Errorf("victims %v, want %v", names(v), tc.want)
			}
		})
	}
}

func TestHits(t *testing.T) {
	tr := Trace{Requests: []Request{{Model: "a"}, {Model: "b"}, {Model: "a"}, {Model: "c"}, {Model: "c"}, {Model: "b"}}}
	// Recent guesses: before b [a]; before a [b a]; before c [a b]; before
	// c [c a]; before b [c a]: top-1 hits 1 (c), top-2 hits 2 (a, c).
	h, n := Hits(tr, &Recent{}, 2)
	if n != 5 || !slices.Equal(h, []int{1, 2}) {
		t.Errorf("hits %v of %d, want [1 2] of 5", h, n)
	}
	r := &Recent{}
	for _, m := range []string{"a", "b", "c"} {
		r.Observe(predict.Obs{Kind: predict.Request, Model: m})
	}
	r.Observe(predict.Obs{Kind: predict.Evict, Model: "a"})
	if got := r.Next(2, predict.Query{Exclude: []string{"c"}}); len(got) != 2 || got[0].Model != "b" || got[1].Model != "a" {
		t.Errorf("Recent.Next = %v, want b, a", got)
	}
}
