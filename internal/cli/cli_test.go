package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/vramkeeper/vramkeeper/internal/cli"
	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/manager"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(context.Background(), args, &out, &errb, nil)
	return code, out.String(), errb.String()
}

// The CLI against a real Ollama: every subcommand, its JSON, and the exit
// code of each failure a script must tell apart.
func TestCLIAgainstRealOllama(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Ollama")
	}
	srv := ollamatest.Start(t)
	for name, spec := range map[string]ggufgen.Spec{
		"tiny-coder:latest": {Arch: "llama", Layers: 4, Embd: 256, Heads: 4, KVHeads: 4, FFN: 512, Vocab: ggufgen.MinVocab, ContextLength: 4096, WeightType: "F32"},
		"tiny-chat:latest":  {Arch: "qwen2", Layers: 4, Embd: 256, Heads: 4, KVHeads: 2, FFN: 512, Vocab: ggufgen.MinVocab, ContextLength: 4096, WeightType: "F16"},
	} {
		srv.Create(t, name, spec)
	}
	dir := t.TempDir()
	base := []string{"--ollama", srv.URL.String(), "--state-dir", dir, "--config", filepath.Join(dir, "config.toml"), "--ctx", "1024", "--listen", "127.0.0.1:1"}
	cmd := func(args ...string) []string { return append(append([]string{}, args...), base...) }

	code, out, errs := run(t, cmd("models", "--json")...)
	if code != 0 {
		t.Fatalf("models: exit %d: %s", code, errs)
	}
	var models []map[string]any
	if err := json.Unmarshal([]byte(out), &models); err != nil {
		t.Fatalf("models --json: %v\n%s", err, out)
	}
	if len(models) != 2 {
		t.Fatalf("models --json listed %d models", len(models))
	}
	for _, k := range []string{"name", "parameters", "quantization", "estimate_bytes", "priority", "fits", "loaded"} {
		if _, ok := models[0][k]; !ok {
			t.Errorf("models --json: no %q field", k)
		}
	}
	if models[0]["loaded"] != false || models[0]["estimate_bytes"].(float64) <= 0 {
		t.Errorf("models --json: %v", models[0])
	}
	if len(srv.Running(t)) != 0 {
		t.Fatal("listing models loaded one")
	}

	code, out, errs = run(t, cmd("best", "code_generation", "coder", "--json")...)
	if code != 0 {
		t.Fatalf("best: exit %d: %s", code, errs)
	}
	var choice struct {
		Model   string   `json:"model"`
		Reason  string   `json:"reason"`
		Evicted []string `json:"evicted"`
	}
	if err := json.Unmarshal([]byte(out), &choice); err != nil || choice.Model != "tiny-coder:latest" || choice.Reason == "" || choice.Evicted == nil {
		t.Fatalf("best --json = %s (%v)", out, err)
	}

	code, out, errs = run(t, cmd("status", "--json")...)
	var st cli.StatusJSON
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status: exit %d: %s %s", code, out, errs)
	}
	if len(st.Loaded) != 1 || st.Loaded[0].Name != "tiny-coder:latest" || st.Loaded[0].SizeBytes == 0 || st.BudgetBytes == 0 || st.Source == "" {
		t.Fatalf("status --json = %+v", st)
	}
	if st.UsedBytes != st.Loaded[0].SizeBytes {
		t.Errorf("used %d != loaded size %d", st.UsedBytes, st.Loaded[0].SizeBytes)
	}

	if code, out, errs = run(t, cmd("unload", "tiny-coder")...); code != 0 || len(srv.Running(t)) != 0 {
		t.Fatalf("unload: exit %d %s %s; running %v", code, out, errs, srv.Running(t))
	}
	if code, out, errs = run(t, cmd("load", "tiny-chat:latest")...); code != 0 || !strings.Contains(out, "loaded tiny-chat:latest") {
		t.Fatalf("load: exit %d %s %s", code, out, errs)
	}
	// --ctx on load: the model is loaded at that context.
	if code, out, errs = run(t, append(cmd("load", "tiny-coder:latest"), "--ctx", "2048")...); code != 0 || !strings.Contains(out, "at 2048 tokens") {
		t.Fatalf("load --ctx: exit %d %s %s", code, out, errs)
	}
	if got := onCard(t, srv); got["tiny-coder:latest"] != 2048 {
		t.Fatalf("load --ctx 2048: /api/ps = %v", got)
	}
	// yield in-process: the card is emptied, and the state folder
	// remembers it: a later command refuses to load, restore puts the model
	// back at its context.
	if code, out, errs = run(t, cmd("yield")...); code != 0 || !strings.Contains(out, "tiny-coder:latest") ||
		!strings.Contains(errs, "no VRAM Keeper is running") || len(srv.Running(t)) != 0 {
		t.Fatalf("yield: exit %d %q %q; running %v", code, out, errs, srv.Running(t))
	}
	if code, _, errs = run(t, cmd("load", "tiny-chat:latest")...); code != cli.ExitYielded {
		t.Fatalf("load after yield: exit %d %s, want %d", code, errs, cli.ExitYielded)
	}
	if code, out, errs = run(t, cmd("restore")...); code != 0 || !strings.Contains(out, "tiny-coder:latest") {
		t.Fatalf("restore: exit %d %q %q", code, out, errs)
	}
	if got := onCard(t, srv); got["tiny-coder:latest"] != 2048 {
		t.Fatalf("restored at %v, want tiny-coder at 2048", got)
	}
	png := filepath.Join(t.TempDir(), "vram.png")
	if code, _, errs = run(t, cmd("history", "--plot", png)...); code != 0 {
		t.Fatalf("history --plot: exit %d %s", code, errs)
	}
	if b, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("history --plot %s: %v", png, err)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown model", cmd("load", "no-such-model"), cli.ExitUnknownModel, "no-such-model"},
		{"unknown task", cmd("best", "juggling"), cli.ExitUnknownTask, "juggling"},
		{"never fits", cmd("load", "tiny-coder:latest", "--budget", "1MiB"), cli.ExitNeverFits, "budget"},
		{"bad budget", cmd("status", "--budget", "lots"), cli.ExitUsage, "--budget"},
		{"bad command", cmd("frobnicate"), cli.ExitUsage, "unknown command"},
		{"ollama down", append(cmd("status"), "--ollama", "127.0.0.1:1"), cli.ExitUnreachable, "unreachable"},
	} {
		code, _, errs := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", tc.name, code, errs, tc.code, tc.msg)
		}
		if strings.Count(strings.TrimSpace(errs), "\nvramkeeper:") > 0 {
			t.Errorf("%s: more than one error line: %q", tc.name, errs)
		}
	}
}

// With an instance serving, the CLI works through its API: the load shows in
// the serving manager's history as its own load, not as an adopted model.
func TestCLIUsesRunningInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Ollama")
	}
	srv := ollamatest.Start(t)
	srv.Create(t, "tiny:latest", ggufgen.Spec{Arch: "llama", Layers: 2, Embd: 128, Heads: 2, KVHeads: 2, FFN: 256,
		Vocab: ggufgen.MinVocab, ContextLength: 2048, WeightType: "F32"})
	dir := t.TempDir()
	// No warm start: the load must be the CLI's, through the instance.
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte("warm_start = \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--ollama", srv.URL.String(), "--listen", ollamatest.FreeAddrT(t), "--config", filepath.Join(dir, "config.toml")}
	s := serve(t, append([]string{"--state-dir", filepath.Join(dir, "serve")}, flags...))
	if code, out, errs := run(t, append([]string{"load", "tiny", "--state-dir", filepath.Join(dir, "serve")}, flags...)...); code != 0 {
		t.Fatalf("load: exit %d %s %s", code, out, errs)
	}
	hist, err := s.c.History(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(hist, func(e manager.Event) bool { return e.Kind == manager.EventLoaded && e.Model == "tiny:latest" })
	if i < 0 || hist[i].Reason != "loaded from the command line" {
		t.Fatalf("serving manager's history %+v: the CLI did not load through it", hist)
	}
}

// A broken config file is reported with its line and the defaults are kept.
func TestBrokenConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte("max_loaded = 2\nbudget = \"lots\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, errs := run(t, "status", "--config", cfg, "--state-dir", dir, "--ollama", "127.0.0.1:1")
	if !strings.Contains(errs, cfg+":2") || !strings.Contains(errs, "budget") {
		t.Fatalf("stderr %q does not point at %s line 2", errs, cfg)
	}
}

// `version` answers without a config, a state folder or a server, on
// stdout, in one line a script can read.
func TestVersion(t *testing.T) {
	code, out, errs := run(t, "version", "--ollama", "127.0.0.1:1", "--config", filepath.Join(t.TempDir(), "missing.toml"))
	if code != cli.ExitOK || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if !strings.HasPrefix(out, "vramkeeper ") || strings.Count(out, "\n") != 1 || !strings.Contains(out, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("version printed %q", out)
	}
	if code, _, _ := run(t, "version", "extra"); code != cli.ExitUsage {
		t.Errorf("version with an argument: exit %d, want %d", code, cli.ExitUsage)
	}
}
