package predict

import (
	"fmt"
	"slices"
	"testing"
)

func req(model, client, task string) Obs {
	return Obs{Kind: Request, Model: model, Client: client, Task: task}
}

func feed(p *Predictor, obs ...Obs) {
	for _, o := range obs {
		p.Observe(o)
	}
}

func top(gs []Guess) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Model)
	}
	return out
}

func TestNext(t *testing.T) {
	cycle := func(n int, models ...string) []Obs {
		var out []Obs
		for i := range n {
			out = append(out, req(models[i%len(models)], "", ""))
		}
		return out
	}
	var follow []Obs
	for i := range 40 {
		follow = append(follow, req("x", "", ""), req([]string{"a", "a", "b", "a", "a", "b", "a", "a", "b", "c"}[i%10], "", ""))
	}
	follow = append(follow, req("x", "", ""))
	// Two clients in bursts; x always alternates a/b, y always asks c.
	var bursts []Obs
	for i := range 12 {
		for j := range 4 {
			if i%2 == 0 {
				bursts = append(bursts, req([]string{"a", "b"}[j%2], "x", ""))
			} else {
				bursts = append(bursts, req("c", "y", ""))
			}
		}
	}
	// Each task has its model; chat follows code, code follows chat.
	var tasks []Obs
	for i := range 30 {
		if i%2 == 0 {
			tasks = append(tasks, req("coder", "", "code"))
		} else {
			tasks = append(tasks, req("chatter", "", "chat"))
		}
	}
	cases := map[string]struct {
		obs  []Obs
		q    Query
		k    int
		want []string // the best k, in order
		minP float64  // of the first
	}{
		"empty":              {nil, Query{}, 2, nil, 0},
		"k zero":             {cycle(4, "a"), Query{}, 0, nil, 0},
		"one model":          {cycle(5, "a"), Query{}, 3, []string{"a"}, 0.9},
		"cycle of three":     {cycle(30, "a", "b", "c"), Query{}, 1, []string{"a"}, 0.6},          // after ...c comes a
		"excluding a":        {follow, Query{Exclude: []string{"a"}}, 2, []string{"b", "c"}, 0.2}, // x is followed by a 60 %, b 30 %, c 10 %
		"client x next":      {bursts, Query{Client: "x"}, 1, []string{"a"}, 0.5},                 // x last asked b
		"client y next":      {bursts, Query{Client: "y"}, 1, []string{"c"}, 0.8},
		"burst continues":    {bursts, Query{}, 1, []string{"c"}, 0.5},
		"task named":         {tasks, Query{Task: "code"}, 1, []string{"coder"}, 0.8},
		"task follows tasks": {tasks, Query{}, 1, []string{"coder"}, 0.8}, // last was chat
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := New()
			feed(p, tc.obs...)
			got := p.Next(tc.k, tc.q)
			if !slices.Equal(top(got), tc.want) {
				t.Fatalf("got %v, want %v (experts %v)", got, tc.want, p.Experts())
			}
			if len(got) > 0 && got[0].P < tc.minP {
				t.Errorf("P(%s) = %.2f, want ≥ %.2f", got[0].Model, got[0].P, tc.minP)
			}
			var sum float64
			for _, g := range p.Next(100, Query{}) {
				sum += g.P
			}
			if len(tc.obs) > 0 && (sum < 0.999 || sum > 1.001) {
				t.Errorf("probabilities sum to %.4f", sum)
			}
		})
	}
}

// The expert that explains the workload gains the weight: per-client
// chains for interleaved deterministic clients, task transitions for a
// task rhythm.
func TestExpertsWeighed(t *testing.T) {
	p := New()
	order := []string{"x", "x", "y", "z", "y", "x", "z", "z"} // who speaks: no fixed rhythm
	next := map[string]int{}
	chains := map[string][]string{"x": {"a", "b"}, "y": {"c", "d", "e"}, "z": {"f", "g"}}
	for i := range 400 {
		c := order[(i*5+i/8)%len(order)]
		ch := chains[c]
		feed(p, req(ch[next[c]%len(ch)], c, ""))
		next[c]++
	}
	w := p.Experts()
	for name, v := range w {
		if name != "client" && v >= w["client"] {
			t.Errorf("%s weighs %.3f ≥ client %.3f (%v)", name, v, w["client"], w)
		}
	}
}

// An evicted model that keeps coming back is the best guess among the
// models not loaded; one that never returns is not.
func TestComeback(t *testing.T) {
	p := New()
	for i := range 10 {
		feed(p, req("big", "", ""), req("big", "", ""),
			Obs{Kind: Evict, Model: "big"}, req("other", "", ""), req("other", "", ""),
			Obs{Kind: Evict, Model: "other"}, req("big", "", ""), Obs{Kind: Evict, Model: "big"},
			req(fmt.Sprint("once-", i), "", ""))
	}
	feed(p, Obs{Kind: Evict, Model: "big"}, req("x", "", ""))
	got := p.Next(1, Query{Exclude: []string{"x"}})
	if len(got) != 1 || got[0].Model != "big" {
		t.Errorf("got %v, want big (experts %v)", got, p.Experts())
	}
	if p.comebacks[p.ids["big"]] == 0 || p.comebacks[p.ids["once-0"]] != 0 {
		t.Errorf("comebacks: big %v, once-0 %v", p.comebacks[p.ids["big"]], p.comebacks[p.ids["once-0"]])
	}
}

// After the working set changes, the new models lead within a few dozen
// requests, although the old ones hold far more counts.
func TestPhaseChange(t *testing.T) {
	p := New()
	for i := range 600 {
		feed(p, req([]string{"a", "b", "c"}[i%3], "", ""))
	}
	for i := range 30 {
		feed(p, req([]string{"d", "e", "f"}[i%3], "", ""))
	}
	got := p.Next(1, Query{})
	if len(got) != 1 || got[0].Model != "d" || got[0].P < 0.8 {
		t.Errorf("got %v after the change, want d (experts %v)", got, p.Experts())
	}
}

// A load right after an eviction is a comeback too, whether the request
// that caused it is observed before or after it.
func TestComebackByLoad(t *testing.T) {
	for _, loadFirst := range []bool{false, true} {
		p := New()
		feed(p, req("m", "", ""), Obs{Kind: Evict, Model: "m"}, req("other", "", ""))
		if loadFirst {
			feed(p, Obs{Kind: Load, Model: "m"}, req("m", "", ""))
		} else {
			feed(p, req("m", "", ""), Obs{Kind: Load, Model: "m"})
		}
		if got := p.comebacks[p.ids["m"]]; got != 1 {
			t.Errorf("load first %v: %v comebacks, want 1", loadFirst, got)
		}
	}
}

// Loads and evictions never count as requests; an empty name is ignored.
func TestObserveOnlyRequestsPredict(t *testing.T) {
	p := New()
	feed(p, Obs{Kind: Load, Model: "a"}, Obs{Kind: Evict, Model: "a"}, Obs{Kind: Request})
	if got := p.Next(2, Query{}); got != nil {
		t.Errorf("predicted %v from no requests", got)
	}
}
