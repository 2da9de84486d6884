// Package faults holds the fault scenarios: a real Ollama behind a
// fault-injecting proxy (internal/faultproxy), a manager talking to it
// through the proxy, and for each scenario one fault (a hung load, a load
// that always runs out of memory, Ollama answering 500, a connection cut
// mid-stream, the server killed mid-load, an unload that never ends, a
// model unloaded behind the manager's back) with checks of what a user
// would notice: the budget never exceeded on /api/ps, no request stuck past
// its deadline, clear errors naming the model, the state reconciled,
// nothing loaded twice.
//
// The scenarios are written once, here: the fault-tier test
// (manager/faults_test.go) runs them and fails on any broken check, and
// cmd/reliability runs them to write the table in docs/RELIABILITY.md.
package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/vramkeeper/vramkeeper/internal/faultproxy"
	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/manager/gpu"
)

// Model is one generated model the scenarios use.
type Model struct {
	Name string
	Spec ggufgen.Spec
}

// Models are four small generated models of distinct sizes and three
// architectures, whose names carry the hints the task tables look for, so
// that tasks pick different models. The scenarios choose among them by
// rank and estimate, never by name.
var Models = []Model{
	{"coder-big:latest", ggufgen.Spec{Arch: "llama", Layers: 8, Embd: 1024, Heads: 16, KVHeads: 4, FFN: 2816, Vocab: 32000, ContextLength: 16384, WeightType: "Q8_0"}},
	{"chat-mid:latest", ggufgen.Spec{Arch: "qwen2", Layers: 6, Embd: 768, Heads: 12, KVHeads: 4, FFN: 2048, Vocab: 16000, ContextLength: 32768, WeightType: "Q8_0"}},
	{"coder-small:latest", ggufgen.Spec{Arch: "llama", Layers: 4, Embd: 512, Heads: 8, KVHeads: 2, FFN: 1536, Vocab: 8000, ContextLength: 16384, WeightType: "Q4_0"}},
	{"embed-bert:latest", ggufgen.Spec{Arch: "bert", Layers: 4, Embd: 384, Heads: 6, KVHeads: 6, FFN: 1536, Vocab: 8000, ContextLength: 512, WeightType: "F16"}},
}

// Env is what the scenarios run against.
type Env struct {
	Ollama *ollamatest.Server
	// Proxy stands between every manager and Ollama.
	Proxy *faultproxy.Server
	// CLI is the vramkeeper command, built by Prepare.
	CLI string
	// GPU is the card probe every scenario's manager reads (NVML, or an
	// 8 GiB card where there is no driver).
	GPU *gpu.Probe
	// Dir holds the command and each scenario's state directory.
	Dir string
	Log *slog.Logger
}

// Prepare builds the vramkeeper command into dir and creates the models on
// srv (which the caller owns) meanwhile, then starts the proxy in front of
// srv; Close stops the proxy.
func Prepare(ctx context.Context, srv *ollamatest.Server, dir string, log *slog.Logger) (*Env, error) {
	cli := filepath.Join(dir, "bin", "vramkeeper")
	built := make(chan error, 1)
	go func() { built <- buildCLI(ctx, cli) }()
	err := createModels(ctx, srv)
	if berr := <-built; err == nil {
		err = berr
	}
	if err != nil {
		return nil, err
	}
	p, err := faultproxy.Listen(srv.URL, faultproxy.Options{MaxHold: 2 * time.Minute, Log: log})
	if err != nil {
		return nil, err
	}
	return &Env{Ollama: srv, Proxy: p, CLI: cli, GPU: gpu.New(8*gib, log), Dir: dir, Log: log}, nil
}

func createModels(ctx context.Context, srv *ollamatest.Server) error {
	for _, m := range Models {
		var b bytes.Buffer
		if err := ggufgen.Write(&b, m.Spec); err != nil {
			return fmt.Errorf("generating %s: %w", m.Name, err)
		}
		if err := srv.CreateModelContext(ctx, m.Name, b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the proxy and the card probe.
func (e *Env) Close() error {
	e.GPU.Close()
	return e.Proxy.Close()
}

// buildCLI builds the vramkeeper command to out. The first build compiles
// the GUI toolkit's C parts (minutes); later ones only link (seconds).
func buildCLI(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/vramkeeper/vramkeeper")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the vramkeeper command: %w\n%s", err, b)
	}
	return nil
}

// reset brings Ollama back to a clean card between scenarios: it runs (a
// scenario may have killed it) and has nothing loaded; the proxy has no
// rules and no counts.
func (e *Env) reset(ctx context.Context) error {
	e.Proxy.Reset()
	if e.Ollama.PID() == 0 {
		if err := e.Ollama.Relaunch(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		ps, err := e.Ollama.Client.ListRunning(ctx)
		if err != nil {
			return fmt.Errorf("resetting: /api/ps: %w", err)
		}
		if len(ps.Models) == 0 {
			return nil
		}
		for _, m := range ps.Models {
			if err := stopModel(ctx, e.Ollama.Client, m.Name); err != nil {
				return fmt.Errorf("resetting: unloading %s: %w", m.Name, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("resetting: models still loaded: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopModel is `ollama stop`: keep_alive 0 straight to Ollama.
func stopModel(ctx context.Context, c *api.Client, name string) error {
	return c.Generate(ctx, &api.GenerateRequest{Model: name, KeepAlive: &api.Duration{Duration: 0}},
		func(api.GenerateResponse) error { return nil })
}

// scratch makes a fresh directory for one scenario.
func (e *Env) scratch(name string) (string, error) {
	d := filepath.Join(e.Dir, name)
	if err := os.RemoveAll(d); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	return d, os.MkdirAll(d, 0o755)
}
