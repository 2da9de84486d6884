package manager_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/mgrtest"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

func start(t *testing.T, rt *fakeRuntime, opt manager.Options) *manager.Manager {
	t.Helper()
	m, _ := startStop(t, rt, opt)
	return m
}

// startStop is start with a stop function, for restarts.
func startStop(t *testing.T, rt *fakeRuntime, opt manager.Options) (*manager.Manager, func()) {
	t.Helper()
	opt.Runtime = rt
	if opt.GPU == nil {
		opt.GPU = &fakeGPU{rt: rt, total: 8 * gib}
	}
	if opt.StateDir == "" {
		opt.StateDir = t.TempDir()
	}
	opt.PollEvery = 20 * time.Millisecond
	opt.RefreshEvery = 100 * time.Millisecond
	m, stop := mgrtest.Run(t, opt)
	manager.VerifySnapshots(t, m)
	if err := m.Refresh(context.Background()); err != nil && !errors.Is(err, manager.ErrUnreachable) {
		t.Fatalf("refresh: %v", err)
	}
	return m, stop
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A day of agent requests on a simulated 8 GiB card: the card never holds
// more than the 7 GiB budget or more than two models, and every request
// gets a model that suits it.
func TestSeedCatalogueStaysInBudget(t *testing.T) {
	rt := newFakeRuntime()
	seedCatalogue(rt)
	m := start(t, rt, manager.Options{})
	snap := m.Snapshot()
	if len(snap.Models) != 27 {
		t.Fatalf("discovered %d models, want 27", len(snap.Models))
	}
	if snap.Budget != 7*gib {
		t.Fatalf("budget = %d, want 7 GiB on an 8 GiB card", snap.Budget)
	}
	if n := len(rt.runningNames()); n != 0 {
		t.Fatalf("discovery loaded %d models", n)
	}
	requests := []struct{ task, role, wantSub string }{
		{"code_generation", "architect", "code"},
		{"chat", "assistant", ""},
		{"embedding", "", "embed"},
		{"code_review", "reviewer", ""},
		{"reasoning", "researcher", ""},
		{"vision", "", "llava"},
		{"summarization", "assistant", ""},
		{"tool_use", "coder", ""},
		{"code_generation", "coder", "code"},
		{"chat", "", ""},
	}
	for _, r := range requests {
		c, err := m.BestModelForTask(ctxT(t), r.task, r.role)
		if err != nil {
			t.Fatalf("%s/%s: %v", r.task, r.role, err)
		}
		if !strings.Contains(c.Model, r.wantSub) {
			t.Errorf("%s/%s chose %s, want a model with %q in its name", r.task, r.role, c.Model, r.wantSub)
		}
		if c.Reason == "" {
			t.Errorf("%s/%s: no reason", r.task, r.role)
		}
		if !slices.Contains(rt.runningNames(), c.Model) {
			t.Errorf("%s/%s: %s not loaded in the server", r.task, r.role, c.Model)
		}
		if v, _ := m.Snapshot().Model(c.Model); v.Priority < 1 || v.Priority > 10 {
			t.Errorf("%s priority %d out of 1..10", c.Model, v.Priority)
		}
	}
	peak, peakCount := rt.Peak()
	if peak > 7*gib {
		t.Errorf("peak loaded %.2f GiB, over the 7 GiB budget", float64(peak)/gib)
	}
	if peakCount > 2 {
		t.Errorf("peak %d models loaded at once, max is 2", peakCount)
	}
}

// Eviction order follows last use under LRU, and the model in use stays.
func TestLRUOrder(t *testing.T) {
	rt := newFakeRuntime()
	for _, n := range []string{"a:3b", "b:3b", "c:3b"} {
		rt.add(n, 3.2, nil, 1)
	}
	// A test clock, a second between uses: the system's can give two quick
	// uses one time (Windows' ticks are 15.6 ms), and LRU then goes by name.
	clk := newClock()
	m := start(t, rt, manager.Options{Now: clk.now, Settings: manager.Settings{Policy: "lru", MaxLoaded: 2}})
	ctx := ctxT(t)
	for _, n := range []string{"a:3b", "b:3b", "a:3b"} { // a used last
		clk.advance(time.Second)
		if _, err := m.Load(ctx, n, "test"); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(time.Second)
	res, err := m.Load(ctx, "c:3b", "test")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Evicted, []string{"b:3b"}) {
		t.Fatalf("evicted %v, want [b:3b] (least recently used)", res.Evicted)
	}
	if got := rt.runningNames(); !slices.Equal(got, []string{"a:3b", "c:3b"}) {
		t.Fatalf("running %v", got)
	}
	var evicted []manager.Event
	for _, e := range m.History() {
		if e.Kind == manager.EventEvicted {
			evicted = append(evicted, e)
		}
	}
	if len(evicted) != 1 || evicted[0].For != "c:3b" || !strings.Contains(evicted[0].Reason, "to make room for c:3b") {
		t.Fatalf("eviction history %+v", evicted)
	}
}

// The best model does not fit the budget: the next best is chosen and the
// reason says why; the model already loaded is not unloaded for nothing.
func TestNextBestWhenBestCannotFit(t *testing.T) {
	rt := newFakeRuntime()
	code := []string{"completion", "insert"}
	rt.add("small:1b", 1.2, nil, 1)
	rt.add("coder:7b", 7.6, code, 1)
	m := start(t, rt, manager.Options{Settings: manager.Settings{Budget: config.Size{Bytes: 3 * gib}}})
	ctx := ctxT(t)
	if _, err := m.Load(ctx, "small:1b", "test"); err != nil {
		t.Fatal(err)
	}
	ranked, err := m.Rank("code_generation", "architect")
	if err != nil {
		t.Fatal(err)
	}
	if ranked[0].Name != "coder:7b" {
		t.Fatalf("ranking puts %s first; a code model should lead for code_generation", ranked[0].Name)
	}
	c, err := m.BestModelForTask(ctx, "code_generation", "architect")
	if err != nil {
		t.Fatal(err)
	}
	if c.Model != "small:1b" {
		t.Fatalf("chose %s, want small:1b", c.Model)
	}
	if !strings.Contains(c.Reason, "coder:7b") || !strings.Contains(c.Reason, "budget") {
		t.Errorf("reason %q does not say why coder:7b was passed over", c.Reason)
	}
	// A model that can never fit is refused with ErrNeverFits and nothing
	// loaded is unloaded for it.
	before := rt.runningNames()
	if _, err := m.Load(ctx, "coder:7b", "test"); !errors.Is(err, manager.ErrNeverFits) {
		t.Fatalf("Load(coder:7b) = %v, want ErrNeverFits", err)
	}
	if after := rt.runningNames(); !slices.Equal(before, after) {
		t.Fatalf("running changed from %v to %v", before, after)
	}
}

// Many callers asking for one model at once cause exactly one load, and a
// caller whose context ends stops waiting without stopping the load.
func TestConcurrentRequestsShareOneLoad(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("a:3b", 3.2, nil, 1)
	rt.SetLoadDelay(200 * time.Millisecond)
	m := start(t, rt, manager.Options{})
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := m.Load(short, "a:3b", "impatient"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("impatient caller got %v, want deadline exceeded", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := m.Load(ctxT(t), "a:3b", "test")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := rt.loadCount("a:3b"); n != 1 {
		t.Fatalf("%d loads, want 1", n)
	}
}

// Models loaded by other clients are adopted and counted against the budget;
// a restart of the server that loses them is noticed.
func TestReconcileAndRestart(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("a:7b", 7.6, nil, 1)
	rt.add("b:3b", 3.2, nil, 1)
	m := start(t, rt, manager.Options{})
	sub, unsub := m.Subscribe(256)
	defer unsub()
	rt.loadExternal("a:7b")
	waitFor(t, "adoption", func() bool { v, _ := m.Snapshot().Model("a:7b"); return v.Loaded && m.Snapshot().Used > 0 })

	rt.setDown(true)
	waitFor(t, "ollama down", func() bool { return !m.Snapshot().OllamaUp })
	if _, err := m.BestModelForTask(ctxT(t), "chat", ""); !errors.Is(err, manager.ErrUnreachable) {
		t.Errorf("BestModelForTask while down = %v, want ErrUnreachable", err)
	}
	rt.setDown(false)
	waitFor(t, "ollama up and the lost model idle", func() bool {
		v, _ := m.Snapshot().Model("a:7b")
		return m.Snapshot().OllamaUp && !v.Loaded
	})
	c, err := m.BestModelForTask(ctxT(t), "chat", "")
	if err != nil || c.Model == "" {
		t.Fatalf("after restart: %v", err)
	}
	kinds := map[manager.EventKind]int{}
	for len(sub) > 0 {
		kinds[(<-sub).Kind]++
	}
	for _, k := range []manager.EventKind{manager.EventOllamaDown, manager.EventOllamaUp, manager.EventUnloadedByOllama, manager.EventLoaded} {
		if kinds[k] == 0 {
			t.Errorf("no %s event; got %v", k, kinds)
		}
	}
	if kinds[manager.EventOllamaDown] > 1 {
		t.Errorf("%d ollama_down events for one outage", kinds[manager.EventOllamaDown])
	}
}

// A model deleted between discovery and its load fails with a clear error,
// disappears from the list, and the manager keeps working.
func TestModelDeletedMidLoad(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("gone:3b", 3.2, nil, 1)
	rt.add("ok:3b", 3.2, nil, 1)
	m := start(t, rt, manager.Options{})
	rt.SetLoadHook(func(name string) error {
		if name == "gone:3b" {
			rt.remove(name)
		}
		return nil
	})
	_, err := m.Load(ctxT(t), "gone:3b", "test")
	if !errors.Is(err, manager.ErrModelUnknown) || !errors.Is(err, manager.ErrLoadFailed) {
		t.Fatalf("err = %v, want model unknown + load failed", err)
	}
	waitFor(t, "deleted model dropped", func() bool { _, ok := m.Snapshot().Model("gone:3b"); return !ok })
	if _, err := m.Load(ctxT(t), "ok:3b", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Load(ctxT(t), "never-installed", "test"); !errors.Is(err, manager.ErrModelUnknown) || !strings.Contains(err.Error(), "ok:3b") {
		t.Fatalf("unknown model error %v should list installed models", err)
	}
}

// The measured size after a load replaces the estimate, survives a restart
// of the manager, and the history is appended to a JSONL file.
func TestCalibrationPersists(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("a:3b", 3.2, nil, 1.3) // real size 30 % over the estimate
	dir := t.TempDir()
	m, stop := startStop(t, rt, manager.Options{StateDir: dir})
	before, _ := m.Snapshot().Model("a:3b")
	if _, err := m.Load(ctxT(t), "a:3b", "test"); err != nil {
		t.Fatal(err)
	}
	if err := m.Unload(ctxT(t), "a:3b"); err != nil {
		t.Fatal(err)
	}
	stop()
	m2 := start(t, rt, manager.Options{StateDir: dir})
	after, _ := m2.Snapshot().Model("a:3b")
	if !after.Calibrated || after.EstimateBytes <= before.EstimateBytes {
		t.Fatalf("after restart estimate %d calibrated=%v, before %d", after.EstimateBytes, after.Calibrated, before.EstimateBytes)
	}
	if after.LastUsed.IsZero() {
		t.Error("last-used time lost across restart")
	}
	b, err := os.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil || !strings.Contains(string(b), `"kind":"loaded"`) || !strings.Contains(string(b), `"kind":"unloaded"`) {
		t.Fatalf("history file: %v %s", err, b)
	}
	if h := m2.History(); len(h) < 2 {
		t.Fatalf("history not read back: %d events", len(h))
	}
}

// Pinned models are never evicted automatically, and pausing stops
// evictions altogether.
func TestPinnedAndPaused(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("a:7b", 7.6, nil, 1)
	rt.add("b:7b", 7.6, nil, 1)
	m := start(t, rt, manager.Options{})
	ctx := ctxT(t)
	if _, err := m.Load(ctx, "a:7b", "test"); err != nil {
		t.Fatal(err)
	}
	if err := m.SetPaused(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Load(ctx, "b:7b", "test"); !errors.Is(err, manager.ErrPaused) {
		t.Fatalf("paused load = %v, want ErrPaused", err)
	}
	if err := m.SetPaused(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := m.SetPinned(ctx, "a:7b", true); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := m.Load(short, "b:7b", "test"); err == nil {
		t.Fatal("b loaded by evicting pinned a")
	}
	if got := rt.runningNames(); !slices.Equal(got, []string{"a:7b"}) {
		t.Fatalf("running %v", got)
	}
}

func TestUnknownTask(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("a:3b", 3.2, nil, 1)
	m := start(t, rt, manager.Options{})
	if _, err := m.BestModelForTask(ctxT(t), "juggling", ""); !errors.Is(err, manager.ErrUnknownTask) {
		t.Fatalf("err = %v, want ErrUnknownTask", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Models pulled or deleted while the manager runs show up and disappear on
// the discovery timer, without anyone asking.
func TestDiscoveryNoticesChanges(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("a:3b", 3.2, nil, 1)
	m := start(t, rt, manager.Options{})
	rt.add("new:7b", 7.6, nil, 1)
	waitFor(t, "new model discovered", func() bool { _, ok := m.Snapshot().Model("new:7b"); return ok })
	rt.remove("a:3b")
	waitFor(t, "deleted model gone", func() bool { _, ok := m.Snapshot().Model("a:3b"); return !ok })
}

// What /api/show said of a model is kept by digest: a restarted manager
// asks only about models it has not seen, yet knows every model as before.
func TestCatalogueSkipsShowAfterRestart(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("a:3b", 3.2, nil, 1)
	rt.add("b:7b", 7.6, nil, 1)
	dir := t.TempDir()
	first, stop := startStop(t, rt, manager.Options{StateDir: dir})
	before, _ := first.Snapshot().Model("b:7b")
	shows := rt.Shows()
	if shows < 2 {
		t.Fatalf("%d shows for 2 models", shows)
	}
	rt.add("c:1b", 1.2, nil, 1)
	stop()
	second := start(t, rt, manager.Options{StateDir: dir})
	if got := rt.Shows() - shows; got != 1 {
		t.Fatalf("restart asked Ollama about %d models, want 1 (only the new one)", got)
	}
	after, ok := second.Snapshot().Model("b:7b")
	if !ok || after.EstimateBytes != before.EstimateBytes || after.Priority != before.Priority {
		t.Fatalf("cached model differs: %+v vs %+v", after, before)
	}
	if _, ok := second.Snapshot().Model("c:1b"); !ok {
		t.Fatal("new model not discovered")
	}
}

// A model found loaded at another context length is reloaded at ours
// without evicting a neighbour for bytes it frees itself.
func TestReloadAtOtherContextCountsOnce(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("a:7b", 7.6, nil, 1)
	rt.add("b:1b", 1.2, nil, 1)
	m := start(t, rt, manager.Options{Settings: manager.Settings{NumCtx: 2048}})
	ctx := ctxT(t)
	if _, err := m.Load(ctx, "b:1b", "test"); err != nil {
		t.Fatal(err)
	}
	rt.loadExternal("a:7b") // another client, at 4096
	waitFor(t, "adoption", func() bool { v, _ := m.Snapshot().Model("a:7b"); return v.Loaded })
	res, err := m.Load(ctx, "a:7b", "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Evicted) != 0 || res.Already {
		t.Fatalf("reload at 2048: %+v, want a reload that evicts nothing", res)
	}
	if got := rt.runningNames(); !slices.Equal(got, []string{"a:7b", "b:1b"}) {
		t.Fatalf("running %v", got)
	}
}
