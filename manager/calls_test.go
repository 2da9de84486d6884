package manager_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/mgrtest"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// The best model for a task fails to load: BestModelForTask answers with
// the next one, says why, and within the backoff does not try the broken
// one again.
func TestBestFallsBackWhenTheBestFailsToLoad(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("coder-small:1b", 1.2, nil, 1)
	rt.add("coder-mid:3b", 3.2, nil, 1)
	m := start(t, rt, manager.Options{})
	ranked, err := m.Rank("code_generation", "")
	if err != nil || len(ranked) != 2 {
		t.Fatalf("rank: %v %v", ranked, err)
	}
	broken, next := ranked[0].Name, ranked[1].Name
	rt.SetLoadHook(func(name string) error {
		if name == broken {
			return errors.New("llama runner process has terminated: error loading model")
		}
		return nil
	})
	for i := range 3 {
		c, err := m.BestModelForTask(ctxT(t), "code_generation", "")
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if c.Model != next || !strings.Contains(c.Reason, broken) {
			t.Fatalf("call %d: %+v, want %s with a reason naming %s", i, c, next, broken)
		}
	}
	if n := rt.LoadCount(broken); n != 0 {
		t.Fatalf("the broken model loaded %d times", n)
	}
	v, _ := m.Snapshot().Model(broken)
	if v.RetryAt.IsZero() || v.Error == "" {
		t.Fatalf("the broken model's view does not say it failed: %+v", v)
	}
}

// Warm start loads the best model for the configured task once the models
// are listed, and nothing when it is off.
func TestWarmStart(t *testing.T) {
	for _, task := range []string{"chat", ""} {
		t.Run(fmt.Sprintf("%q", task), func(t *testing.T) {
			rt := newFakeRuntime()
			seedCatalogue(rt)
			m := start(t, rt, manager.Options{WarmStart: task})
			if task == "" {
				if s := m.Snapshot(); len(s.LoadedModels()) != 0 || s.Loading != "" {
					t.Fatalf("warm start off, yet %v loaded (loading %q)", s.LoadedModels(), s.Loading)
				}
				return
			}
			waitFor(t, "warm start", func() bool { return len(rt.runningNames()) == 1 && len(m.Snapshot().LoadedModels()) == 1 })
			c, err := m.BestModelForTask(ctxT(t), task, "")
			if err != nil || !c.Already || rt.runningNames()[0] != c.Model {
				t.Fatalf("warm start loaded %v; best for %s is %+v (%v)", rt.runningNames(), task, c, err)
			}
			found := false
			for _, e := range m.History() {
				found = found || e.Kind == manager.EventLoaded && strings.Contains(e.Reason, "warm start")
			}
			if !found {
				t.Errorf("history does not say why it was loaded: %v", m.History())
			}
		})
	}
}

// The timeline keeps a sample per poll and a mark per load.
func TestTimelineRecordsPollsAndLoads(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("a:3b", 3.2, nil, 1)
	m := start(t, rt, manager.Options{})
	began := time.Now()
	if _, err := m.Load(ctxT(t), "a:3b", "test"); err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh(ctxT(t)); err != nil { // one more poll, after the load
		t.Fatal(err)
	}
	w, _ := m.Timeline(ctxT(t), began.Add(-time.Second))
	var marked, sampled bool
	for _, mk := range w.Marks {
		marked = marked || mk.Kind == timeline.MarkLoad && mk.Model == "a:3b"
	}
	for _, s := range w.Samples {
		sampled = sampled || s.Models["a:3b"] > 0 && s.Budget == 7<<30
	}
	if !marked || !sampled {
		t.Fatalf("timeline %+v: load marked %v, sampled %v", w, marked, sampled)
	}
}

// Everything a caller can do at once, under the race detector: settings
// changes, subscriptions, loads, leases, snapshots, history and timeline
// reads.
func TestConcurrentCallsAreSafe(t *testing.T) {
	rt := newFakeRuntime()
	for i := range 4 {
		rt.add(fmt.Sprintf("m%d:3b", i), 3.2, nil, 1)
	}
	m := start(t, rt, manager.Options{})
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			name := fmt.Sprintf("m%d:3b", i%4)
			for j := range 5 {
				switch (i + j) % 5 {
				case 0:
					_ = m.Apply(ctx, manager.SettingsPatch{Budget: &config.Size{Bytes: uint64(6+j%2) << 30}})
					_ = m.SetPinned(ctx, name, true)
				case 1:
					ch, stop := m.Subscribe(4)
					_ = m.Snapshot()
					stop()
					for range ch {
					}
				case 2:
					if release, _, err := m.Acquire(ctx, name, "test"); err == nil {
						_ = m.Snapshot().Models
						release()
						release()
					}
				case 3:
					_, _ = m.Load(ctx, name, "test")
				case 4:
					_ = m.History()
					_, _ = m.Timeline(ctx, time.Time{})
					_ = m.SetPinned(ctx, name, false)
				}
			}
		})
	}
	wg.Wait()
	if peak, _ := rt.Peak(); peak > 7<<30 {
		t.Fatalf("peak %d over the budget", peak)
	}
}

// After Run returns, every call fails with ErrStopped at once.
func TestCallsAfterStopFailAtOnce(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("a:3b", 3.2, nil, 1)
	m, stop := mgrtest.Run(t, manager.Options{Runtime: rt, GPU: &fakeGPU{rt: rt, total: 8 * gib}})
	manager.VerifySnapshots(t, m)
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for name, call := range map[string]func() error{
		"load":    func() error { _, err := m.Load(ctx, "a:3b", "test"); return err },
		"acquire": func() error { _, _, err := m.Acquire(ctx, "a:3b", "test"); return err },
		"unload":  func() error { return m.Unload(ctx, "a:3b") },
		"refresh": func() error { return m.Refresh(ctx) },
		"apply":   func() error { return m.Apply(ctx, manager.SettingsPatch{}) },
		"best":    func() error { _, err := m.BestModelForTask(ctx, "chat", ""); return err },
		"yield":   func() error { _, err := m.Yield(ctx); return err },
		"pin":     func() error { return m.SetPinned(ctx, "a:3b", true) },
	} {
		if err := call(); !errors.Is(err, manager.ErrStopped) {
			t.Errorf("%s after stop: %v, want ErrStopped", name, err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("a call after stop waited for its deadline")
	}
}

// Yield empties the card and Restore puts the same models back, both in
// the history.
func TestYieldRestoreThroughTheManager(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("a:3b", 3.2, nil, 1)
	rt.add("b:1b", 1.2, nil, 1)
	m := start(t, rt, manager.Options{})
	ctx := ctxT(t)
	for _, n := range []string{"a:3b", "b:1b"} {
		if _, err := m.Load(ctx, n, "test"); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := m.Yield(ctx)
	if err != nil || len(gone) != 2 || len(rt.runningNames()) != 0 || !m.Snapshot().Yielded {
		t.Fatalf("yield: %v %v, running %v", gone, err, rt.runningNames())
	}
	if _, err := m.Load(ctx, "a:3b", "test"); !errors.Is(err, manager.ErrYielded) {
		t.Fatalf("load while yielded: %v", err)
	}
	back, err := m.Restore(ctx)
	if err != nil || len(back) != 2 || len(rt.runningNames()) != 2 || m.Snapshot().Yielded {
		t.Fatalf("restore: %v %v, running %v", back, err, rt.runningNames())
	}
	kinds := map[manager.EventKind]int{}
	for _, e := range m.History() {
		kinds[e.Kind]++
	}
	if kinds[manager.EventYielded] != 2 || kinds[manager.EventRestored] != 2 {
		t.Fatalf("history %v", kinds)
	}
}

// A server whose list says each model's capabilities (Ollama v0.30 on) is
// discovered from the list alone: models are ranked before any /api/show
// answers, and their estimates follow.
func TestDiscoveryFromTheListAlone(t *testing.T) {
	rt := newFakeRuntime()
	seedCatalogue(rt)
	gate := make(chan struct{})
	rt.ListLikeV030(gate)
	m := start(t, rt, manager.Options{}) // start refreshes: discovery is done here
	snap := m.Snapshot()
	if len(snap.Models) != 27 || rt.Shows() != 0 {
		t.Fatalf("discovered %d models with %d shows answered", len(snap.Models), rt.Shows())
	}
	ranked, err := m.Rank("code_generation", "coder")
	if err != nil || len(ranked) == 0 {
		t.Fatalf("no ranking from the list: %v %v", ranked, err)
	}
	if v, _ := snap.Model(ranked[0].Name); v.EstimateBytes != 0 || v.Fits {
		t.Fatalf("estimated before /api/show: %+v", v)
	}
	close(gate)
	waitFor(t, "estimates after discovery", func() bool {
		for _, v := range m.Snapshot().Models {
			if v.EstimateBytes == 0 {
				return false
			}
		}
		return true
	})
	if n := rt.Shows(); n != 27 {
		t.Errorf("%d shows for 27 models", n)
	}
}

// A failed load's backoff outlives the manager: the next one (a restart,
// or the next CLI command) does not try the model again within it.
func TestBackoffSurvivesARestart(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("broken:3b", 3.2, nil, 1)
	rt.SetLoadHook(func(string) error { return errors.New("llama runner process has terminated") })
	dir := t.TempDir()
	m, stop := startStop(t, rt, manager.Options{StateDir: dir})
	if _, err := m.Load(ctxT(t), "broken:3b", "test"); !errors.Is(err, manager.ErrLoadFailed) {
		t.Fatalf("first load: %v", err)
	}
	stop()
	m2 := start(t, rt, manager.Options{StateDir: dir})
	_, err := m2.Load(ctxT(t), "broken:3b", "test")
	if !errors.Is(err, manager.ErrLoadFailed) || !strings.Contains(err.Error(), "not trying again") {
		t.Fatalf("after a restart: %v, want the backoff kept", err)
	}
}

// The window's in-flight column follows requests on a loaded model as soon
// as each call returns, with a typical library installed (such a request
// has only its own model's view rebuilt: its holds are all it changed).
func TestInFlightFollowsRequestsAtOnce(t *testing.T) {
	rt := newFakeRuntime()
	seedCatalogue(rt)
	m := start(t, rt, manager.Options{})
	ctx := ctxT(t)
	c, err := m.BestModelForTask(ctx, "chat", "")
	if err != nil {
		t.Fatal(err)
	}
	snap := func() (manager.Snapshot, manager.ModelView) {
		s := m.Snapshot()
		v, _ := s.Model(c.Model)
		return s, v
	}
	others, _ := snap()
	var releases []func()
	for want := 1; want <= 2; want++ {
		release, res, err := m.Acquire(ctx, c.Model, "test")
		if err != nil || !res.Already {
			t.Fatalf("acquire %d: %+v %v", want, res, err)
		}
		releases = append(releases, release)
		if _, v := snap(); v.InFlight != want {
			t.Fatalf("after acquire %d, in flight %d", want, v.InFlight)
		}
	}
	for i, release := range releases {
		release()
		// A plain request after the release is answered after it: its
		// snapshot shows the release.
		if _, err := m.Load(ctx, c.Model, "test"); err != nil {
			t.Fatal(err)
		}
		if _, v := snap(); v.InFlight != len(releases)-1-i {
			t.Errorf("after %d releases, in flight %d", i+1, v.InFlight)
		}
	}
	s, _ := snap()
	for i, v := range s.Models {
		if w := others.Models[i]; v.Name != c.Model && (v.Name != w.Name || v.State != w.State || v.InFlight != 0) {
			t.Errorf("%s changed: %+v, was %+v", v.Name, v, w)
		}
	}
}
