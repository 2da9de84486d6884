package api_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// span is one streamed request as Ollama stamped it: the first and the
// last chunk's created_at.
type span struct {
	model       string
	first, last time.Time
}

// 200 concurrent requests over five models with a budget that holds two:
// the card never holds more than the budget, no model is loaded twice
// without an unload between, every request is answered, and no model is
// unloaded while a request on it streams.
func TestLoadStaysInBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("about a minute of inference on 2 cores; -short skips it")
	}
	const nModels, nRequests = 5, 200
	models := map[string]ggufgen.Spec{}
	var names []string
	for i := range nModels {
		// Sizes within 40% of each other, so any two fit where no three do.
		n := fmt.Sprintf("m%d", i)
		models[n] = llama(8+i, 64)
		names = append(names, n+":latest")
	}
	r := newRig(t, models, manager.Options{Settings: manager.Settings{MaxLoaded: nModels}}, server.Options{})
	ctx := ctxFor(t, 5*time.Minute)

	// The budget from the manager's own estimates: above the two largest,
	// below the three smallest.
	var sizes []uint64
	for _, n := range names {
		v, ok := r.m.Snapshot().Model(n)
		if !ok || v.EstimateBytes == 0 {
			t.Fatalf("%s: no estimate (%+v)", n, v)
		}
		sizes = append(sizes, v.EstimateBytes)
	}
	slices.Sort(sizes)
	maxPair, minTriple := sizes[nModels-1]+sizes[nModels-2], sizes[0]+sizes[1]+sizes[2]
	if maxPair >= minTriple {
		t.Fatalf("sizes %v: two largest %d ≥ three smallest %d", sizes, maxPair, minTriple)
	}
	budget := (maxPair + minTriple) / 2
	if err := r.m.Apply(ctx, manager.SettingsPatch{Budget: &config.Size{Bytes: budget}}); err != nil {
		t.Fatal(err)
	}
	if got := r.m.Snapshot().Budget; got != budget {
		t.Fatalf("budget %d, want %d", got, budget)
	}
	t.Logf("estimates %v; budget %d (two largest %d, three smallest %d)", sizes, budget, maxPair, minTriple)

	// Sample the real server's /api/ps every 20 ms.
	var samples, over int
	var maxBytes uint64
	maxModels := 0
	sctx, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			ps, err := r.ollama.Client.ListRunning(sctx)
			if err == nil {
				var sum uint64
				for _, p := range ps.Models {
					sum += uint64(p.Size)
				}
				samples++
				maxBytes = max(maxBytes, sum)
				maxModels = max(maxModels, len(ps.Models))
				if sum > budget {
					over++
					t.Errorf("sample %d: /api/ps holds %d bytes in %d models, over the %d budget", samples, sum, len(ps.Models), budget)
				}
			}
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
		}
	})

	began := time.Now()
	var answered, chunked atomic.Int64
	var mu sync.Mutex
	var spans []span
	var wg sync.WaitGroup
	opts := map[string]any{"num_predict": 3, "temperature": 0}
	for i := range nRequests {
		wg.Go(func() {
			model := names[(i*7+i/nModels)%nModels] // spread, not round-robin in lockstep
			stream := i%3 != 1
			var first, last time.Time
			chunks := 0
			var done bool
			var err error
			note := func(at time.Time, d bool) {
				if chunks == 0 {
					first = at
				}
				chunks++
				last, done = at, d
			}
			if i%2 == 0 {
				err = r.client.Generate(ctx, &api.GenerateRequest{Model: model, Prompt: "count", Stream: &stream, Options: opts},
					func(g api.GenerateResponse) error { note(g.CreatedAt, g.Done); return nil })
			} else {
				err = r.client.Chat(ctx, &api.ChatRequest{Model: model, Stream: &stream, Options: opts,
					Messages: []api.Message{{Role: "user", Content: "count"}}},
					func(c api.ChatResponse) error { note(c.CreatedAt, c.Done); return nil })
			}
			if err != nil || !done {
				t.Errorf("request %d on %s: %v (done %v)", i, model, err, done)
				return
			}
			answered.Add(1)
			if stream && chunks > 1 {
				chunked.Add(1)
				mu.Lock()
				spans = append(spans, span{model, first, last})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	stopSampling()
	sampler.Wait()

	// Duplicate loads and unloads under a stream, from the history.
	loaded := map[string]bool{}
	var loads, evictions, dups, underStream int
	for _, e := range r.m.History() {
		switch e.Kind {
		case manager.EventLoaded:
			loads++
			if loaded[e.Model] {
				dups++
				t.Errorf("%s loaded twice with no unload between (%s)", e.Model, e.Time)
			}
			loaded[e.Model] = true
		case manager.EventUnloaded, manager.EventEvicted:
			evictions++
			loaded[e.Model] = false
			start := e.Time.Add(-e.Duration)
			for _, s := range spans {
				if s.model == e.Model && start.After(s.first) && start.Before(s.last) {
					underStream++
					t.Errorf("%s unloaded at %s while a request streamed from %s to %s", e.Model, start, s.first, s.last)
				}
			}
		}
	}
	if n := loadsInLog(r); n != loads+1 { // +1: the GPU discovery runner at start
		t.Errorf("Ollama started %d runners for %d loads: it reloaded behind the manager", n-1, loads)
	}
	t.Logf("%d requests answered in %s (%d streamed in several chunks); %d loads, %d evictions, %d duplicate loads, %d unloads under a stream",
		answered.Load(), took.Round(time.Millisecond), chunked.Load(), loads, evictions, dups, underStream)
	t.Logf("/api/ps: %d samples, %d over budget, max %d bytes (%.1f%% of the %d budget), at most %d models",
		samples, over, maxBytes, 100*float64(maxBytes)/float64(budget), budget, maxModels)
	if answered.Load() != nRequests {
		t.Errorf("%d of %d requests answered", answered.Load(), nRequests)
	}
	if chunked.Load() == 0 {
		t.Error("no streamed request arrived in several chunks")
	}
	if loads < nModels {
		t.Errorf("%d loads for %d models", loads, nModels)
	}
	if maxModels > 2 {
		t.Errorf("%d models loaded at once; the budget holds two", maxModels)
	}
}
