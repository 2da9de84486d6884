package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/cli"
	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/internal/testwait"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
)

// serving is a `vramkeeper serve` run in this process for a test.
type serving struct {
	c    *client.Client
	stop func()
}

func serve(t *testing.T, args []string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		var out bytes.Buffer
		served <- cli.Main(ctx, append([]string{"serve"}, args...), &out, &errb, nil)
	}()
	var addr string
	for i, a := range args {
		if a == "--listen" {
			addr = args[i+1]
		}
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if code := <-served; code != 0 {
			t.Errorf("serve exited %d: %s", code, errb.String())
		}
	}
	t.Cleanup(stop)
	for i := 0; ; i++ {
		c, err := client.Dial(ctx, "http://"+addr, "")
		if err == nil {
			return &serving{c: c, stop: stop}
		}
		if i > 200 {
			t.Fatalf("serve never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, bounded
	}
}

// onCard is /api/ps as name → context length.
func onCard(t *testing.T, srv *ollamatest.Server) map[string]int {
	out := map[string]int{}
	for _, p := range srv.Running(t) {
		out[p.Name] = p.ContextLength
	}
	return out
}

// The config's warm start, per-model context and the yield/restore
// commands against a real Ollama, through `vramkeeper serve`: with
// warm_start = "" nothing loads at start; with "chat" exactly the best
// model for chat, at its own context_length; yield empties /api/ps and
// restore brings the same models back at the same contexts.
func TestServeWarmStartYieldRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Ollama")
	}
	srv := ollamatest.Start(t)
	srv.Create(t, "tiny-chat:latest", ggufgen.Spec{Arch: "qwen2", Layers: 4, Embd: 256, Heads: 4, KVHeads: 2, FFN: 512,
		Vocab: ggufgen.MinVocab, ContextLength: 8192, WeightType: "F16"})
	srv.Create(t, "tiny-other:latest", ggufgen.Spec{Arch: "llama", Layers: 2, Embd: 128, Heads: 2, KVHeads: 2, FFN: 256,
		Vocab: ggufgen.MinVocab, ContextLength: 4096, WeightType: "F32"})
	dir := t.TempDir()
	config := filepath.Join(dir, "config.toml")
	flags := []string{"--ollama", srv.URL.String(), "--listen", ollamatest.FreeAddrT(t), "--config", config, "--state-dir", filepath.Join(dir, "state"), "--ctx", "1024"}
	write := func(s string) {
		if err := os.WriteFile(config, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// No warm start: discovery done and several polls later, nothing is
	// loaded.
	write(`warm_start = ""` + "\n")
	s := serve(t, flags)
	testwait.Until(t, "discovery and three polls", time.Minute, func() (bool, string) {
		snap, err := s.c.Snapshot(ctx)
		if err != nil || !snap.Discovered {
			return false, fmt.Sprintf("discovered %v (%v)", snap.Discovered, err)
		}
		w, err := s.c.Timeline(ctx, snap.Time)
		return err == nil && len(w.Samples) >= 3, fmt.Sprintf("%d samples since discovery (%v)", len(w.Samples), err)
	})
	if got := onCard(t, srv); len(got) != 0 {
		t.Fatalf(`warm_start = "": loaded %v at start`, got)
	}
	s.stop()

	// Warm start for chat, with tiny-chat's own context.
	write("warm_start = \"chat\"\n\n[models.\"tiny-chat:latest\"]\ncontext_length = 2048\n")
	s = serve(t, flags)
	testwait.Until(t, "the warm start", 2*time.Minute, func() (bool, string) {
		got := onCard(t, srv)
		return len(got) == 1 && got["tiny-chat:latest"] == 2048, fmt.Sprint(got)
	})
	// Ollama lists the model a moment before the manager's load returns.
	testwait.Until(t, "the history to say the warm start loaded tiny-chat", 30*time.Second, func() (bool, string) {
		hist, err := s.c.History(ctx)
		return err == nil && slices.ContainsFunc(hist, func(e manager.Event) bool {
			return e.Kind == manager.EventLoaded && e.Model == "tiny-chat:latest" && strings.Contains(e.Reason, "warm start")
		}), fmt.Sprintf("%+v (%v)", hist, err)
	})
	if got := onCard(t, srv); len(got) != 1 {
		t.Fatalf("the warm start loaded more than one model: %v", got)
	}

	// A second model at the global context; give the GPU back, then put
	// the same two back at the same contexts.
	if code, out, errs := run(t, append([]string{"load", "tiny-other"}, flags...)...); code != 0 {
		t.Fatalf("load: exit %d %s %s", code, out, errs)
	}
	want := map[string]int{"tiny-chat:latest": 2048, "tiny-other:latest": 1024}
	if got := onCard(t, srv); !maps.Equal(got, want) {
		t.Fatalf("before yield /api/ps = %v, want %v", got, want)
	}
	began := time.Now()
	code, out, errs := run(t, append([]string{"yield"}, flags...)...)
	if code != 0 || !strings.Contains(out, "tiny-chat:latest") || !strings.Contains(out, "tiny-other:latest") {
		t.Fatalf("yield: exit %d %q %q", code, out, errs)
	}
	if got := onCard(t, srv); len(got) != 0 {
		t.Fatalf("after yield /api/ps = %v", got)
	}
	t.Logf("yield emptied /api/ps in %s", time.Since(began).Round(time.Millisecond))
	if code, _, errs := run(t, append([]string{"load", "tiny-other"}, flags...)...); code != cli.ExitYielded || !strings.Contains(errs, "restore") {
		t.Errorf("load while yielded: exit %d %q; want %d saying to restore", code, errs, cli.ExitYielded)
	}
	code, out, errs = run(t, append([]string{"restore"}, flags...)...)
	if code != 0 || !strings.HasPrefix(out, "restored ") {
		t.Fatalf("restore: exit %d %q %q", code, out, errs)
	}
	if got := onCard(t, srv); !maps.Equal(got, want) {
		t.Fatalf("after restore /api/ps = %v, want %v", got, want)
	}
	code, out, _ = run(t, append([]string{"history"}, flags...)...)
	if code != 0 || strings.Count(out, "  gave back ") != 2 || strings.Count(out, "  restored ") != 2 {
		t.Errorf("history:\n%s", out)
	}
}
