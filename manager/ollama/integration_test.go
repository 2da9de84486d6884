package ollama_test

import (
	"context"
	"errors"
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

// Tiny models: a few MB each, they load in well under a second on CPU.
var (
	tinyLlama = ggufgen.Spec{
		Arch: "llama", Layers: 2, Embd: 64, Heads: 2, KVHeads: 1, FFN: 128,
		Vocab: ggufgen.MinVocab, ContextLength: 2048, WeightType: "F32",
	}
	tinyBert = ggufgen.Spec{
		Arch: "bert", Layers: 2, Embd: 64, Heads: 2, KVHeads: 2, FFN: 128,
		Vocab: ggufgen.MinVocab, ContextLength: 512, WeightType: "F32",
	}
)

// TestAgainstRealOllama runs the client against a real server built from the
// pinned module. The steps share one server and build on each other's state
// (what is loaded), so they run in order and stop at the first failure.
func TestAgainstRealOllama(t *testing.T) {
	began := time.Now()
	srv := ollamatest.Start(t)
	t.Logf("server ready in %s", time.Since(began).Round(time.Millisecond))

	began = time.Now()
	srv.Create(t, "tiny", tinyLlama)
	srv.Create(t, "embed", tinyBert)
	t.Logf("created 2 models in %s", time.Since(began).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// A derived model whose Modelfile sets num_ctx, through the real API.
	err := srv.Client.Create(ctx, &api.CreateRequest{
		Model: "tiny-ctx", From: "tiny", Parameters: map[string]any{"num_ctx": 1024},
	}, func(api.ProgressResponse) error { return nil })
	if err != nil {
		t.Fatalf("creating tiny-ctx: %v", err)
	}

	c := ollama.New(srv.URL, nil)

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("version", func(t *testing.T) {
		v, err := c.Version(ctx)
		// A source build without ldflags reports "0.0.0"; any answer will do.
		if err != nil || v == "" {
			t.Fatalf("Version = %q, %v", v, err)
		}
	})

	step("list and show load nothing", func(t *testing.T) {
		list, err := c.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range list {
			names = append(names, m.Name)
			if m.SizeBytes == 0 || m.Digest == "" || m.ModifiedAt.IsZero() {
				t.Errorf("installed %+v: want size, digest and time", m)
			}
		}
		slices.Sort(names)
		if want := []string{"embed:latest", "tiny-ctx:latest", "tiny:latest"}; !slices.Equal(names, want) {
			t.Fatalf("List names = %v, want %v", names, want)
		}
		for _, m := range list {
			if _, err := c.Show(ctx, m.Name); err != nil {
				t.Errorf("Show(%s): %v", m.Name, err)
			}
		}
		if running, err := c.Running(ctx); err != nil || len(running) != 0 {
			t.Fatalf("Running after List+Show = %+v, %v; want nothing loaded", running, err)
		}
	})

	step("show details", func(t *testing.T) {
		tests := []struct {
			name       string
			arch       string
			capability string
			numCtx     int
			vocab      int
		}{
			{"tiny", "llama", "completion", 0, tinyLlama.Vocab},
			{"tiny-ctx:latest", "llama", "completion", 1024, tinyLlama.Vocab},
			{"embed", "bert", "embedding", 0, tinyBert.Vocab},
		}
		for _, tt := range tests {
			d, err := c.Show(ctx, tt.name)
			if err != nil {
				t.Fatalf("Show(%s): %v", tt.name, err)
			}
			if d.Name != tt.name || d.Format != "gguf" || d.Family != tt.arch || d.Meta.Arch != tt.arch {
				t.Errorf("Show(%s) = name %q format %q family %q arch %q", tt.name, d.Name, d.Format, d.Family, d.Meta.Arch)
			}
			if !slices.Contains(d.Capabilities, tt.capability) {
				t.Errorf("Show(%s) capabilities %v, want %s", tt.name, d.Capabilities, tt.capability)
			}
			if d.NumCtx != tt.numCtx {
				t.Errorf("Show(%s) NumCtx = %d, want %d", tt.name, d.NumCtx, tt.numCtx)
			}
			if got := d.Meta.KV[tt.arch+".block_count"]; got != float64(2) {
				t.Errorf("Show(%s) %s.block_count = %#v, want 2", tt.name, tt.arch, got)
			}
			// The vocabulary is left out (it is large and unused); every
			// other key the estimator may read comes back whole.
			for k, v := range d.Meta.KV {
				if v == nil && !strings.HasPrefix(k, "tokenizer.") {
					t.Errorf("Show(%s) %s came back truncated", tt.name, k)
				}
			}
			i := slices.IndexFunc(d.Meta.Tensors, func(t estimate.Tensor) bool { return t.Name == "token_embd.weight" })
			if i < 0 {
				t.Fatalf("Show(%s): no token_embd.weight among %d tensors", tt.name, len(d.Meta.Tensors))
			}
			if te := d.Meta.Tensors[i]; te.Type != "F32" || !slices.Equal(te.Shape, []uint64{64, uint64(tt.vocab)}) {
				t.Errorf("Show(%s) token_embd.weight = %+v", tt.name, te)
			}
		}
	})

	step("unknown model", func(t *testing.T) {
		calls := map[string]func() error{
			"show":   func() error { _, err := c.Show(ctx, "ghost"); return err },
			"load":   func() error { return c.Load(ctx, serving.LoadRequest{Name: "ghost"}) },
			"embed":  func() error { return c.Load(ctx, serving.LoadRequest{Name: "ghost", Embedding: true}) },
			"unload": func() error { return c.Unload(ctx, "ghost") },
		}
		for op, call := range calls {
			err := call()
			if !errors.Is(err, serving.ErrModelUnknown) || !strings.Contains(err.Error(), "ghost") {
				t.Errorf("%s ghost: %v, want ErrModelUnknown naming it", op, err)
			}
		}
	})

	step("load", func(t *testing.T) {
		began := time.Now()
		if err := c.Load(ctx, serving.LoadRequest{Name: "tiny", NumCtx: 1024}); err != nil {
			t.Fatal(err)
		}
		t.Logf("load (generate) took %s", time.Since(began).Round(time.Millisecond))
		began = time.Now()
		if err := c.Load(ctx, serving.LoadRequest{Name: "embed", NumCtx: 256, Embedding: true}); err != nil {
			t.Fatal(err)
		}
		t.Logf("load (embed) took %s", time.Since(began).Round(time.Millisecond))

		running, err := c.Running(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"tiny:latest": 1024, "embed:latest": 256}
		for _, r := range running {
			ctxLen, ok := want[r.Name]
			if !ok {
				t.Errorf("unexpected running model %+v", r)
				continue
			}
			delete(want, r.Name)
			t.Logf("running %s: size %d B, vram %d B, context %d", r.Name, r.SizeBytes, r.VRAMBytes, r.ContextLength)
			if r.SizeBytes == 0 || r.ContextLength != ctxLen || r.Digest == "" {
				t.Errorf("running %+v: want size > 0, digest and context %d", r, ctxLen)
			}
			// keep_alive -1: Ollama reports an expiry centuries away.
			if r.ExpiresAt.Before(time.Now().AddDate(10, 0, 0)) {
				t.Errorf("running %s expires at %s: keep_alive -1 not applied", r.Name, r.ExpiresAt)
			}
		}
		if len(want) != 0 {
			t.Errorf("not running: %v (running: %+v)", want, running)
		}
	})

	step("reload at another context", func(t *testing.T) {
		// The manager changes a loaded model's context by loading it again;
		// Ollama then restarts the runner with the new num_ctx.
		if err := c.Load(ctx, serving.LoadRequest{Name: "tiny", NumCtx: 2048}); err != nil {
			t.Fatal(err)
		}
		running, err := c.Running(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(running, func(r serving.Running) bool { return r.Name == "tiny:latest" })
		if i < 0 || running[i].ContextLength != 2048 {
			t.Fatalf("running = %+v, want tiny:latest at 2048", running)
		}
	})

	step("unload", func(t *testing.T) {
		for _, name := range []string{"tiny", "embed:latest"} {
			began := time.Now()
			if err := c.Unload(ctx, name); err != nil {
				t.Fatalf("Unload(%s): %v", name, err)
			}
			t.Logf("unload %s took %s", name, time.Since(began).Round(time.Millisecond))
		}
		if running := srv.Running(t); len(running) != 0 {
			t.Fatalf("running after unloads = %+v", running)
		}
		// Unloading what is not loaded returns at once.
		if err := c.Unload(ctx, "tiny"); err != nil {
			t.Fatalf("second Unload: %v", err)
		}
	})

	step("restart", func(t *testing.T) {
		if err := c.Load(ctx, serving.LoadRequest{Name: "tiny"}); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		srv.Restart(t)
		t.Logf("restart took %s", time.Since(began).Round(time.Millisecond))
		// The same client (and its pooled connections, now dead) works again.
		if _, err := c.Version(ctx); err != nil {
			t.Fatalf("Version after restart: %v", err)
		}
		list, err := c.List(ctx)
		if err != nil || len(list) != 3 {
			t.Fatalf("List after restart = %d models, %v; want 3", len(list), err)
		}
		if running, err := c.Running(ctx); err != nil || len(running) != 0 {
			t.Fatalf("Running after restart = %+v, %v; want nothing", running, err)
		}
		if err := c.Load(ctx, serving.LoadRequest{Name: "tiny"}); err != nil {
			t.Fatalf("Load after restart: %v", err)
		}
		if err := c.Unload(ctx, "tiny"); err != nil {
			t.Fatalf("Unload after restart: %v", err)
		}
	})

	step("stopped server is unreachable", func(t *testing.T) {
		srv.Stop()
		_, err := c.Version(ctx)
		if !errors.Is(err, serving.ErrUnreachable) {
			t.Fatalf("Version on a stopped server: %v, want ErrUnreachable", err)
		}
		if want := "ollama at " + srv.URL.String() + " unreachable"; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
		if err := c.Load(ctx, serving.LoadRequest{Name: "tiny"}); !errors.Is(err, serving.ErrUnreachable) {
			t.Errorf("Load on a stopped server: %v, want ErrUnreachable", err)
		}
	})
}
