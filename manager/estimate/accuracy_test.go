package estimate_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/manager/estimate"
	"github.com/vramkeeper/vramkeeper/manager/ollama"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// accuracyModels have real architectures' proportions (GQA, FFN ≈ 2.7–4×
// width, 8k–32k vocabularies, quantized weights) scaled down so that a load
// takes seconds on 2 CPU cores. Weights dominate, as they do for 1B–70B
// models, so the 10% bound tests the accounting, not fixed overheads.
var accuracyModels = []struct {
	name string
	spec ggufgen.Spec
}{
	{"llama-q4", ggufgen.Spec{Arch: "llama", Layers: 8, Embd: 1024, Heads: 16, KVHeads: 4, FFN: 2816, Vocab: 32000, ContextLength: 16384, WeightType: "Q4_0"}},
	{"qwen2-q8", ggufgen.Spec{Arch: "qwen2", Layers: 6, Embd: 512, Heads: 8, KVHeads: 2, FFN: 1536, Vocab: 16000, ContextLength: 32768, WeightType: "Q8_0"}},
	{"gemma3-q8", ggufgen.Spec{Arch: "gemma3", Layers: 6, Embd: 640, Heads: 4, KVHeads: 1, FFN: 2048, Vocab: 16000, ContextLength: 32768, WeightType: "Q8_0", SlidingWindow: 512}},
	// Twelve layers put two global layers (5 and 11) around sliding ones, as
	// on every real gemma3: the full-context mask then stays allocated
	// across layers 6–10, which the 6-layer model does not show.
	{"gemma3-12l-q8", ggufgen.Spec{Arch: "gemma3", Layers: 12, Embd: 640, Heads: 4, KVHeads: 1, FFN: 2048, Vocab: 16000, ContextLength: 32768, WeightType: "Q8_0", SlidingWindow: 512}},
	{"phi3-q4", ggufgen.Spec{Arch: "phi3", Layers: 6, Embd: 768, Heads: 12, KVHeads: 12, FFN: 2048, Vocab: 16000, ContextLength: 16384, WeightType: "Q4_0"}},
	{"mixtral-q4", ggufgen.Spec{Arch: "llama", Layers: 4, Embd: 512, Heads: 8, KVHeads: 2, FFN: 1024, Vocab: 8000, ContextLength: 16384, WeightType: "Q4_0", Experts: 4, ExpertsUsed: 2}},
	{"qwen3moe-q4", ggufgen.Spec{Arch: "qwen3moe", Layers: 4, Embd: 512, Heads: 8, KVHeads: 2, FFN: 512, Vocab: 8000, ContextLength: 32768, WeightType: "Q4_0", Experts: 8, ExpertsUsed: 2}},
	{"bert-f16", ggufgen.Spec{Arch: "bert", Layers: 4, Embd: 384, Heads: 6, KVHeads: 6, FFN: 1536, Vocab: 8000, ContextLength: 512, WeightType: "F16"}},
}

// TestAccuracyCPU loads generated models into a real Ollama and compares
// Estimate(Device: CPU), with the accounting of the server's generation
// (its /api/version), with /api/ps size. The goals: median error at most
// 3 %, worst at most 8 %, never more than 5 % under (an under-estimate
// lets the manager load past its budget).
func TestAccuracyCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("loads models into a real Ollama")
	}
	srv := ollamatest.Start(t)
	rt := ollama.New(srv.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	gen := estimate.ParseGeneration(srv.Version)
	t.Logf("Ollama %s: %v accounting", srv.Version, gen)
	var errs []float64
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-12s %-9s %6s %12s %12s %12s %12s %12s %7s\n",
		"model", "engine", "ctx", "weights", "kv", "graph", "estimate", "/api/ps", "error")
	for _, am := range accuracyModels {
		var buf bytes.Buffer
		if err := ggufgen.Write(&buf, am.spec); err != nil {
			t.Fatalf("%s: %v", am.name, err)
		}
		srv.CreateModel(t, am.name, buf.Bytes())
		m := showModel(ctx, t, rt, am.name)

		lastCtx := 0
		for _, numCtx := range []int{2048, 8192, 32768} {
			got, err := estimate.Estimate(m, estimate.Options{NumCtx: numCtx, Device: estimate.CPU, Generation: gen})
			if err != nil {
				t.Fatalf("%s: %v", am.name, err)
			}
			if got.NumCtx == lastCtx {
				continue // capped at the trained length: already measured
			}
			lastCtx = got.NumCtx
			measured, ok := load(ctx, t, srv, rt, am.name, am.spec.Arch, numCtx)
			if !ok {
				continue
			}
			relErr := (float64(got.Total) - float64(measured)) / float64(measured)
			fmt.Fprintf(&table, "%-12s %-9s %6d %12d %12d %12d %12d %12d %+6.1f%%\n",
				am.name, got.Engine, got.NumCtx, got.Weights, got.KVCache, got.Graph, got.Total, measured, 100*relErr)
			errs = append(errs, relErr)
			// Under is worse than over: an under-estimate lets the manager
			// load past its budget, so it gets the tighter bound.
			if math.Abs(relErr) > 0.08 || relErr < -0.05 {
				t.Errorf("%s at num_ctx %d: estimate %d (%+v), /api/ps size %d: off by %+.1f%% (bounds: ±8 %%, at most 5 %% under)",
					am.name, numCtx, got.Total, got, measured, 100*relErr)
			}
		}
		generateOne(ctx, t, srv, am.name, am.spec.Arch)
		if err := rt.Unload(ctx, am.name); err != nil {
			t.Errorf("unload %s: %v", am.name, err)
		}
	}
	t.Log(table.String())
	if med := medianAbs(errs); med > 0.03 {
		t.Errorf("median error %.1f %% over %d loads, goal at most 3 %%", 100*med, len(errs))
	}
}

func medianAbs(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	abs := make([]float64, len(xs))
	for i, x := range xs {
		abs[i] = math.Abs(x)
	}
	slices.Sort(abs)
	if n := len(abs); n%2 == 0 {
		return (abs[n/2-1] + abs[n/2]) / 2
	}
	return abs[len(abs)/2]
}

// showModel builds the estimator's input the way the manager does, through
// the Ollama runtime (a verbose /api/show).
func showModel(ctx context.Context, t *testing.T, rt *ollama.Client, name string) estimate.Model {
	t.Helper()
	d, err := rt.Show(ctx, name)
	if err != nil {
		t.Fatalf("show %s: %v", name, err)
	}
	return d.Meta
}

// load loads the model at numCtx through the runtime and returns /api/ps
// size; a failure is reported and the table goes on with the next model.
func load(ctx context.Context, t *testing.T, srv *ollamatest.Server, rt *ollama.Client, name, arch string, numCtx int) (uint64, bool) {
	t.Helper()
	embed := arch == "bert" || arch == "nomic-bert"
	if err := rt.Load(ctx, serving.LoadRequest{Name: name, NumCtx: numCtx, Embedding: embed}); err != nil {
		t.Errorf("load %s at %d: %v\n%s", name, numCtx, err, srv.LogTail())
		return 0, false
	}
	ps, err := rt.Running(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if strings.TrimSuffix(p.Name, ":latest") == name {
			return p.SizeBytes, true
		}
	}
	t.Errorf("%s not in /api/ps after load", name)
	return 0, false
}

// generateOne checks the generated model really runs: one token for
// decoders, one embedding for encoders.
func generateOne(ctx context.Context, t *testing.T, srv *ollamatest.Server, name, arch string) {
	t.Helper()
	if arch == "bert" || arch == "nomic-bert" {
		resp, err := srv.Client.Embed(ctx, &api.EmbedRequest{Model: name, Input: "hello world"})
		if err != nil || len(resp.Embeddings) != 1 || len(resp.Embeddings[0]) == 0 {
			t.Errorf("embed %s: %v (%d embeddings)", name, err, len(resp.Embeddings))
		}
		return
	}
	var evals int
	err := srv.Client.Generate(ctx, &api.GenerateRequest{Model: name, Prompt: "hello", Raw: true,
		Options: map[string]any{"num_predict": 1, "num_ctx": 2048}},
		func(r api.GenerateResponse) error { evals = max(evals, r.EvalCount); return nil })
	if err != nil || evals != 1 {
		t.Errorf("generate %s: %v (%d tokens)", name, err, evals)
	}
}
