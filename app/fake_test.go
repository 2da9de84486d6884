package app

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/serving"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

const gib = 1 << 30

// fakeKeeper records the calls the UI makes.
type fakeKeeper struct {
	mu      sync.Mutex
	snap    manager.Snapshot
	calls   []string
	history []manager.Event
	applied *manager.SettingsPatch
	events  chan manager.Event
	reads   int // Snapshot calls
	// pullGate, when set, holds a Pull halfway until closed; pullHalf
	// then receives a value once the halfway progress is reported.
	pullGate chan struct{}
	pullHalf chan struct{}
}

func newFake(s manager.Snapshot) *fakeKeeper {
	return &fakeKeeper{snap: s, events: make(chan manager.Event, 16)}
}

func (f *fakeKeeper) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeKeeper) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeKeeper) Snapshot() manager.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.snap
}

func (f *fakeKeeper) snapshotReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fakeKeeper) Subscribe(int) (<-chan manager.Event, func()) {
	return f.events, func() {}
}

func (f *fakeKeeper) LoadAt(_ context.Context, name string, _ int, _ string) (manager.LoadResult, error) {
	f.record("load " + name)
	return manager.LoadResult{Model: name}, nil
}

func (f *fakeKeeper) Unload(_ context.Context, name string) error {
	f.record("unload " + name)
	return nil
}

func (f *fakeKeeper) SetPinned(_ context.Context, name string, pinned bool) error {
	if pinned {
		f.record("pin " + name)
	} else {
		f.record("unpin " + name)
	}
	return nil
}

func (f *fakeKeeper) SetPaused(_ context.Context, paused bool) error {
	if paused {
		f.record("pause")
	} else {
		f.record("resume")
	}
	return nil
}

// Yield unloads the loaded models and says the GPU was given back.
func (f *fakeKeeper) Yield(context.Context) ([]string, error) {
	f.record("yield")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snap.Yielded = true
	f.snap.Models = append([]manager.ModelView(nil), f.snap.Models...)
	for i, m := range f.snap.Models {
		if m.Loaded {
			f.snap.Models[i].Loaded, f.snap.Models[i].State = false, manager.Idle
			f.snap.YieldedModels = append(f.snap.YieldedModels, m.Name)
		}
	}
	return f.snap.YieldedModels, nil
}

// Restore loads what Yield unloaded.
func (f *fakeKeeper) Restore(context.Context) ([]string, error) {
	f.record("restore")
	f.mu.Lock()
	defer f.mu.Unlock()
	back := f.snap.YieldedModels
	f.snap.Yielded, f.snap.YieldedModels = false, nil
	f.snap.Models = append([]manager.ModelView(nil), f.snap.Models...)
	for i, m := range f.snap.Models {
		if slices.Contains(back, m.Name) {
			f.snap.Models[i].Loaded, f.snap.Models[i].State = true, manager.Loaded
		}
	}
	return back, nil
}

func (f *fakeKeeper) BestModelForTask(_ context.Context, task, _ string) (manager.Choice, error) {
	f.record("best " + task)
	return manager.Choice{Model: "a:7b", Reason: "test"}, nil
}

// Plan: the app never asks for one; recorded so a test would see it.
func (f *fakeKeeper) Plan(_ context.Context, req manager.PlanRequest) (manager.Plan, error) {
	f.record("plan " + req.Model + req.Task)
	return manager.Plan{Model: req.Model, Evict: []string{}}, nil
}

func (f *fakeKeeper) Timeline(context.Context, time.Time) (timeline.Window, error) {
	return timeline.Window{}, nil
}

func (f *fakeKeeper) History() []manager.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]manager.Event(nil), f.history...)
}

func (f *fakeKeeper) Apply(_ context.Context, p manager.SettingsPatch) error {
	f.mu.Lock()
	f.applied = &p
	f.mu.Unlock()
	f.record("apply")
	return nil
}

// testSnapshot: an 8 GiB estimated card, a 7 GiB budget, one model loaded
// (qwen2.5:7b, 4.6 GiB), one idle that fits and one too big.
func testSnapshot() manager.Snapshot {
	used := uint64(46 * gib / 10)
	return manager.Snapshot{
		Time:     time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC),
		VRAM:     card.VRAM{Source: card.SourceEstimated, Total: 8 * gib},
		Budget:   7 * gib,
		Used:     used,
		Free:     8*gib - used,
		OllamaUp: true, Discovered: true, Settings: manager.Settings{MaxLoaded: 2, NumCtx: 4096},
		Models: []manager.ModelView{
			{Name: "gemma3:27b", Family: "gemma3", Parameters: "27.4B", Quantization: "Q4_K_M",
				EstimateBytes: 17 * gib, Priority: 3, State: manager.Idle},
			{Name: "llama3.2:3b", Family: "llama", Parameters: "3.2B", Quantization: "Q4_K_M",
				EstimateBytes: 2*gib + 512<<20, Fits: true, Priority: 5, State: manager.Idle,
				LastUsed: time.Date(2026, 1, 2, 11, 55, 0, 0, time.UTC)},
			{Name: "qwen2.5:7b", Family: "qwen2", Parameters: "7.6B", Quantization: "Q4_K_M",
				EstimateBytes: used, Calibrated: true, Fits: true, Priority: 7, State: manager.Loaded,
				Loaded: true, SizeBytes: used, LastUsed: time.Date(2026, 1, 2, 11, 59, 30, 0, time.UTC)},
		},
	}
}

// Pull reports two steps of a download; with pullGate set it waits for it
// (or for ctx) halfway, so a test can see the progress and cancel. A
// finished pull lists the model, idle.
func (f *fakeKeeper) Pull(ctx context.Context, req serving.PullRequest, progress func(serving.PullProgress)) error {
	f.record("pull " + req.Name)
	f.mu.Lock()
	gate := f.pullGate
	f.mu.Unlock()
	step := func(done uint64) {
		if progress != nil {
			progress(serving.PullProgress{Status: "pulling sha256:1", Digest: "sha256:1", Total: 2 * gib, Completed: done})
		}
	}
	step(gib)
	if gate != nil {
		f.pullHalf <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	step(2 * gib)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snap.Models = append(slices.Clone(f.snap.Models), manager.ModelView{Name: req.Name, State: manager.Idle, Fits: true})
	return nil
}
