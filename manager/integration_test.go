package manager_test

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/mgrtest"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/gpu"
	"github.com/vramkeeper/vramkeeper/manager/ollama"
)

// realModels are four generated models of distinct sizes and three
// architectures; the names carry the hints the task tables look for.
var realModels = []struct {
	name string
	spec ggufgen.Spec
}{
	{"coder-big:latest", ggufgen.Spec{Arch: "llama", Layers: 8, Embd: 1024, Heads: 16, KVHeads: 4, FFN: 2816, Vocab: 32000, ContextLength: 16384, WeightType: "Q8_0"}},
	{"chat-mid:latest", ggufgen.Spec{Arch: "qwen2", Layers: 6, Embd: 768, Heads: 12, KVHeads: 4, FFN: 2048, Vocab: 16000, ContextLength: 32768, WeightType: "Q8_0"}},
	{"coder-small:latest", ggufgen.Spec{Arch: "llama", Layers: 4, Embd: 512, Heads: 8, KVHeads: 2, FFN: 1536, Vocab: 8000, ContextLength: 16384, WeightType: "Q4_0"}},
	{"embed-bert:latest", ggufgen.Spec{Arch: "bert", Layers: 4, Embd: 384, Heads: 6, KVHeads: 6, FFN: 1536, Vocab: 8000, ContextLength: 512, WeightType: "F16"}},
}

// psSampler polls /api/ps in the background and keeps the largest total it
// saw, so a budget overrun between two manager calls is caught too.
type psSampler struct {
	mu      sync.Mutex
	max     uint64
	samples int
}

func (p *psSampler) run(ctx context.Context, rt *ollama.Client) {
	for ctx.Err() == nil {
		if ps, err := rt.Running(ctx); err == nil {
			var sum uint64
			for _, r := range ps {
				sum += max(r.VRAMBytes, r.SizeBytes)
			}
			p.mu.Lock()
			p.max = max(p.max, sum)
			p.samples++
			p.mu.Unlock()
		}
		time.Sleep(15 * time.Millisecond)
	}
}

func TestAgainstRealOllama(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Ollama")
	}
	srv := ollamatest.Start(t)
	for _, m := range realModels {
		srv.Create(t, m.name, m.spec)
	}
	rt := ollama.New(srv.URL, nil)
	probe := gpu.New(8*gib, nil)
	t.Cleanup(func() { probe.Close() }) // after the manager stops (cleanups run last-in first)
	m := mgrtest.Start(t, manager.Options{Runtime: rt, GPU: probe, StateDir: t.TempDir(),
		PollEvery: 50 * time.Millisecond, Settings: manager.Settings{MaxLoaded: 3, NumCtx: 2048}})
	manager.VerifySnapshots(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Discovery sees every model and loads none.
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	snap := m.Snapshot()
	if len(snap.Models) != len(realModels) {
		t.Fatalf("discovered %d models, want %d", len(snap.Models), len(realModels))
	}
	if ps := srv.Running(t); len(ps) != 0 {
		t.Fatalf("discovery loaded %d models", len(ps))
	}

	// A budget that holds the biggest model with the smallest, but not the
	// two biggest together, so swaps are forced by bytes, not by count.
	var est []uint64
	for _, v := range snap.Models {
		if v.EstimateBytes == 0 {
			t.Fatalf("%s: no estimate (%s)", v.Name, v.EstimateErr)
		}
		est = append(est, v.EstimateBytes)
	}
	sort.Slice(est, func(i, j int) bool { return est[i] > est[j] })
	budget := (est[0] + est[3]) * 11 / 10
	if est[0]+est[1] <= budget {
		t.Fatalf("test models too close in size: %v", est)
	}
	if err := m.Apply(ctx, manager.SettingsPatch{Budget: &config.Size{Bytes: budget}}); err != nil {
		t.Fatal(err)
	}
	var sampler psSampler
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { defer close(sampled); sampler.run(sampleCtx, rt) }()

	steps := []struct {
		task, role string
		load       string // a model by name, when task is ""
		restart    bool   // stop Ollama, check the error, start it again
		want       string // name (or prefix) of the model that must be loaded
	}{
		{load: "coder-big:latest", want: "coder-big:latest"},
		{task: "embedding", want: "embed-bert:latest"},
		{load: "chat-mid:latest", want: "chat-mid:latest"},
		{task: "code_generation", role: "coder", want: "coder-"},
		{load: "coder-big:latest", want: "coder-big:latest"},
		{restart: true},
		{load: "chat-mid:latest", want: "chat-mid:latest"},
		{task: "embedding", want: "embed-bert:latest"},
		{load: "coder-big:latest", want: "coder-big:latest"},
	}
	for i, st := range steps {
		var got string
		switch {
		case st.restart:
			srv.Stop()
			if _, err := m.Load(ctx, "chat-mid:latest", "test"); !errors.Is(err, manager.ErrUnreachable) {
				t.Fatalf("step %d: load with Ollama stopped = %v, want ErrUnreachable", i, err)
			}
			waitFor(t, "ollama down", func() bool { return !m.Snapshot().OllamaUp })
			srv.Restart(t)
			waitFor(t, "ollama back and nothing loaded", func() bool {
				s := m.Snapshot()
				return s.OllamaUp && len(s.LoadedModels()) == 0
			})
			continue
		case st.task != "":
			c, err := m.BestModelForTask(ctx, st.task, st.role)
			if err != nil {
				t.Fatalf("step %d: best %s/%s: %v", i, st.task, st.role, err)
			}
			got = c.Model
		default:
			if _, err := m.Load(ctx, st.load, "test"); err != nil {
				t.Fatalf("step %d: load %s: %v", i, st.load, err)
			}
			got = st.load
		}
		if len(got) < len(st.want) || got[:len(st.want)] != st.want {
			t.Fatalf("step %d: got %s, want %s", i, got, st.want)
		}
		var names []string
		var sum uint64
		for _, r := range srv.Running(t) {
			names = append(names, r.Name)
			sum += uint64(r.Size)
		}
		if !slices.Contains(names, got) {
			t.Fatalf("step %d: %s not in /api/ps %v", i, got, names)
		}
		if sum > budget {
			t.Fatalf("step %d: /api/ps holds %d bytes (%v), budget %d", i, sum, names, budget)
		}
	}
	stopSampling()
	<-sampled
	if sampler.max > budget || sampler.samples < 10 {
		t.Fatalf("/api/ps peak %d bytes over %d samples, budget %d", sampler.max, sampler.samples, budget)
	}
	var evictions int
	for _, e := range m.History() {
		if e.Kind == manager.EventEvicted {
			evictions++
		}
	}
	if evictions == 0 {
		t.Fatal("no eviction happened: the budget did not force a swap")
	}
	t.Logf("budget %d, /api/ps peak %d over %d samples, %d evictions", budget, sampler.max, sampler.samples, evictions)
}
