package cli

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// The config file's newer keys reach the manager: load_timeout, gpu_only,
// per-model contexts ("auto" included); warm_start only for the tray and
// serve, never for a one-shot command's in-process manager.
func TestConfigToManager(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	file := `load_timeout = "90s"
gpu_only = true
warm_start = "code_generation"

[models."qwen2.5-coder:7b"]
context_length = 32768

[models."llama3.2:3b"]
context_length = "auto"

[models."hf.co/u/m:Q4_K_M"]
`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode, warm string
	}{
		{"tray", "code_generation"}, {"serve", "code_generation"}, {"cli", ""},
	} {
		opt, err := ownOptions(tc.mode, cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.mode, err)
		}
		s := opt.Settings
		want := map[string]int{"qwen2.5-coder:7b": 32768, "llama3.2:3b": manager.ContextAuto}
		if s.LoadTimeout != 90*time.Second || !s.GPUOnly || !maps.Equal(s.Contexts, want) {
			t.Errorf("%s: settings %+v; want load timeout 90s, gpu only, contexts %v", tc.mode, s, want)
		}
		if opt.WarmStart != tc.warm {
			t.Errorf("%s: warm start %q, want %q", tc.mode, opt.WarmStart, tc.warm)
		}
	}
	// The defaults: load_timeout grows with the model, no contexts, and the
	// tray warms up for chat.
	opt, err := ownOptions("tray", config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if opt.Settings.LoadTimeout != 0 || opt.Settings.GPUOnly || opt.Settings.Contexts != nil || opt.WarmStart != "chat" {
		t.Errorf("defaults: %+v, warm start %q", opt.Settings, opt.WarmStart)
	}
	// A value the config loader would have reset, given directly, is an
	// error naming its key.
	bad := config.Default()
	bad.Models = map[string]config.ModelConfig{"m": {ContextLength: "huge"}}
	if _, err := Options(bad); err == nil || !strings.Contains(err.Error(), `models."m".context_length`) {
		t.Errorf("bad context: %v", err)
	}
	bad = config.Default()
	bad.LoadTimeout = "soon"
	if _, err := Options(bad); err == nil || !strings.Contains(err.Error(), "load_timeout") {
		t.Errorf("bad load timeout: %v", err)
	}
}

// Scripts tell the newer failures apart.
func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("not loading m: %w", manager.ErrYielded), ExitYielded},
		{fmt.Errorf("loading m: %w", errors.Join(fmt.Errorf("within 10s: %w", manager.ErrTimedOut), manager.ErrLoadFailed)), ExitLoadFailed},
		{fmt.Errorf("m does not fit on the GPU: %w", manager.ErrSpilled), ExitLoadFailed},
		{fmt.Errorf("m still loaded after 10s: %w", manager.ErrTimedOut), ExitError},
		{fmt.Errorf("%w: refused", manager.ErrUnreachable), ExitUnreachable},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// status says what loads and for how long, each loaded model's context
// and CPU share, and the server's version.
func TestStatusOf(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	s := manager.Snapshot{
		OllamaUp: true, Version: "0.17.4", Loading: "big:14b", LoadingSince: now.Add(-12 * time.Second),
		Models: []manager.ModelView{
			{Name: "big:14b", State: manager.Loading},
			{Name: "spilled:7b", Loaded: true, State: manager.Loaded, LoadedCtx: 8192, CPUPercent: 38, SizeBytes: 5 << 30},
		},
	}
	st := statusOf(s, "http://127.0.0.1:11434", now)
	if st.OllamaVersion != "0.17.4" || st.Loading != "big:14b" || st.LoadingSeconds != 12 || st.Yielded {
		t.Errorf("status %+v", st)
	}
	if len(st.Loaded) != 1 || st.Loaded[0].ContextLength != 8192 || st.Loaded[0].CPUPercent != 38 {
		t.Errorf("loaded %+v", st.Loaded)
	}
}
