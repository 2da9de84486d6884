package manager_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// A plan says what a load would do, and the load then does it; asking
// changes nothing: no load, no eviction, no event.
func TestPlanChangesNothingAndMatchesTheLoad(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("chat:3b", 3.2, nil, 1)
	rt.add("coder:3b", 3.2, []string{"completion", "insert"}, 1)
	m := start(t, rt, manager.Options{Settings: manager.Settings{MaxLoaded: 1}})
	ctx := ctxT(t)
	if _, err := m.Load(ctx, "chat:3b", "test"); err != nil {
		t.Fatal(err)
	}
	history, loads := len(m.History()), rt.loadCount("coder:3b")

	p, err := m.Plan(ctx, manager.PlanRequest{Model: "coder:3b"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.CanLoad || p.FitsNow || p.Loaded || !slices.Equal(p.Evict, []string{"chat:3b"}) || p.Blocked != "" {
		t.Fatalf("plan %+v: want a load that evicts chat:3b", p)
	}
	v, _ := m.Snapshot().Model("coder:3b")
	if p.NeedBytes != v.EstimateBytes || p.ContextLength != v.NumCtx {
		t.Errorf("plan needs %d at %d, the snapshot says %d at %d", p.NeedBytes, p.ContextLength, v.EstimateBytes, v.NumCtx)
	}
	if len(m.History()) != history || rt.loadCount("coder:3b") != loads || !slices.Equal(rt.runningNames(), []string{"chat:3b"}) {
		t.Fatalf("the plan changed something: history %d→%d, loads %d→%d, running %v",
			history, len(m.History()), loads, rt.loadCount("coder:3b"), rt.runningNames())
	}

	res, err := m.Load(ctx, "coder:3b", "test")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Evicted, p.Evict) {
		t.Errorf("the load evicted %v, the plan said %v", res.Evicted, p.Evict)
	}
	p, err = m.Plan(ctx, manager.PlanRequest{Model: "coder"}) // :latest-less names resolve as loads do
	if err == nil {
		t.Fatalf("coder (coder:latest) is not installed, yet planned: %+v", p)
	}
	p, err = m.Plan(ctx, manager.PlanRequest{Model: "coder:3b"})
	if err != nil || !p.Loaded || !p.CanLoad || len(p.Evict) != 0 {
		t.Errorf("plan of the loaded model: %+v, %v", p, err)
	}
}

// For a task, the plan names the model BestModelForTask then loads, with
// the same evictions.
func TestPlanForATaskNamesTheBestModel(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("llama:3b", 3.2, nil, 1)
	rt.add("qwen-coder:3b", 3.2, []string{"completion", "insert"}, 1)
	m := start(t, rt, manager.Options{Settings: manager.Settings{MaxLoaded: 1}})
	ctx := ctxT(t)
	if _, err := m.Load(ctx, "llama:3b", "test"); err != nil {
		t.Fatal(err)
	}
	p, err := m.Plan(ctx, manager.PlanRequest{Task: "code_generation", Role: "coder"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Reason == "" {
		t.Errorf("no reason in %+v", p)
	}
	c, err := m.BestModelForTask(ctx, "code_generation", "coder")
	if err != nil {
		t.Fatal(err)
	}
	if c.Model != p.Model || !slices.Equal(c.Evicted, p.Evict) {
		t.Errorf("best loaded %s evicting %v; the plan said %s evicting %v", c.Model, c.Evicted, p.Model, p.Evict)
	}
}

// What a plan answers when a load could not go ahead: a model larger than
// the budget, one that needs an eviction while paused, anything while the
// GPU is given back; and what is an error: names and tasks that do not
// exist, a request that names neither or both.
func TestPlanRefusals(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("small:1b", 1.2, nil, 1)
	rt.add("mid:3b", 3.2, nil, 1)
	rt.add("huge:70b", 70, nil, 1)
	m := start(t, rt, manager.Options{Settings: manager.Settings{MaxLoaded: 1, Budget: config.Size{Bytes: 6 * gib}}})
	ctx := ctxT(t)
	if _, err := m.Load(ctx, "small:1b", "test"); err != nil {
		t.Fatal(err)
	}

	p, err := m.Plan(ctx, manager.PlanRequest{Model: "huge:70b"})
	if err != nil {
		t.Fatal(err)
	}
	if p.CanLoad || !p.NeverFits || p.Blocked == "" || len(p.Evict) != 0 || p.MaxContext != 0 {
		t.Errorf("huge: %+v, want never fits, nothing evicted, no context that fits", p)
	}
	if mid, _ := m.Plan(ctx, manager.PlanRequest{Model: "mid:3b"}); mid.MaxContext < mid.MaxContextNow || mid.MaxContext == 0 {
		t.Errorf("mid: the largest context once small:1b is evicted (%d) is below the one that fits now (%d)", mid.MaxContext, mid.MaxContextNow)
	}

	if err := m.SetPaused(ctx, true); err != nil {
		t.Fatal(err)
	}
	p, _ = m.Plan(ctx, manager.PlanRequest{Model: "mid:3b"})
	_, loadErr := m.Load(ctx, "mid:3b", "test")
	if p.CanLoad || !slices.Equal(p.Evict, []string{"small:1b"}) || !errors.Is(loadErr, manager.ErrPaused) {
		t.Errorf("paused: plan %+v; the load: %v", p, loadErr)
	}
	if err := m.SetPaused(ctx, false); err != nil {
		t.Fatal(err)
	}

	if _, err := m.Yield(ctx); err != nil {
		t.Fatal(err)
	}
	p, _ = m.Plan(ctx, manager.PlanRequest{Model: "mid:3b"})
	if p.CanLoad || p.Blocked == "" {
		t.Errorf("yielded: %+v", p)
	}
	if _, err := m.Plan(ctx, manager.PlanRequest{Task: "chat"}); !errors.Is(err, manager.ErrYielded) {
		t.Errorf("best while yielded: %v, want ErrYielded", err)
	}
	if _, err := m.Restore(ctx); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		req  manager.PlanRequest
		want error
	}{
		{"unknown model", manager.PlanRequest{Model: "nope:1b"}, manager.ErrModelUnknown},
		{"unknown task", manager.PlanRequest{Task: "juggling"}, manager.ErrUnknownTask},
		{"unknown role", manager.PlanRequest{Task: "chat", Role: "jester"}, manager.ErrUnknownRole},
		{"neither", manager.PlanRequest{}, manager.ErrBadSettings},
		{"both", manager.PlanRequest{Model: "mid:3b", Task: "chat"}, manager.ErrBadSettings},
		{"negative context", manager.PlanRequest{Model: "mid:3b", ContextLength: -1}, manager.ErrBadSettings},
	} {
		if _, err := m.Plan(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
