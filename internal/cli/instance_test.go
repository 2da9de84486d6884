package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/cli"
	"github.com/vramkeeper/vramkeeper/internal/fakert"
	"github.com/vramkeeper/vramkeeper/internal/mgrtest"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// fakeInstance is a running VRAM Keeper (a manager over the in-memory
// server, and its API) for commands to talk to, as they do to the tray.
type fakeInstance struct {
	rt   *fakert.Runtime
	m    *manager.Manager
	args []string // flags that point a command at it
}

func startInstance(t *testing.T) *fakeInstance {
	t.Helper()
	rt := fakert.New()
	rt.Add("llama3.2:1b", 1.2, []string{"completion", "tools"}, 1)
	rt.Add("qwen2.5-coder:1.5b", 1.5, []string{"completion", "insert", "tools"}, 1)
	m := mgrtest.Start(t, manager.Options{
		Runtime: rt, GPU: &fakert.GPU{RT: rt, Total: 8 << 30}, PollEvery: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), Settings: manager.Settings{MaxLoaded: 2},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// What the instance manages, as a command given the flags below
	// expects it.
	me := wire.Instance{PID: os.Getpid(), Mode: "serve", Ollama: "http://127.0.0.1:1", StateDir: dir, Listen: ln.Addr().String()}
	srv := api.New(m, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, api.Options{Log: slog.New(slog.DiscardHandler),
		Instance: func() wire.Instance { return me }})
	served := make(chan error, 1)
	go func() { served <- srv.ServeListener(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	return &fakeInstance{rt: rt, m: m, args: []string{"--listen", ln.Addr().String(), "--state-dir", dir,
		"--config", filepath.Join(dir, "none.toml"), "--ollama", "127.0.0.1:1"}}
}

func (f *fakeInstance) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), append(args, f.args...), &out, &errb, nil)
	return code, out.String(), errb.String()
}

// The commands for the manager's newer abilities, through a running
// instance as a user runs them beside the tray: a load at a context
// length, giving the GPU back and putting the same models back, the
// history and its chart, and what status and models say meanwhile.
func TestCommandsThroughInstance(t *testing.T) {
	f := startInstance(t)
	step := func(name string, args []string, code int, check func(t *testing.T, out, errs string)) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			got, out, errs := f.run(t, args...)
			if got != code {
				t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, got, code, out, errs)
			}
			check(t, out, errs)
		})
	}
	step("load at a context", []string{"load", "qwen2.5-coder:1.5b", "--ctx", "8192"}, 0, func(t *testing.T, out, _ string) {
		if out != "loaded qwen2.5-coder:1.5b at 8192 tokens\n" {
			t.Errorf("stdout %q", out)
		}
		if v, _ := f.m.Snapshot().Model("qwen2.5-coder:1.5b"); v.LoadedCtx != 8192 {
			t.Errorf("the instance loaded it at %d, want 8192", v.LoadedCtx)
		}
	})
	step("load at its own", []string{"load", "llama3.2:1b"}, 0, func(t *testing.T, out, _ string) {
		if out != "loaded llama3.2:1b at 4096 tokens\n" {
			t.Errorf("stdout %q", out)
		}
	})
	step("status --json", []string{"status", "--json"}, 0, func(t *testing.T, out, _ string) {
		var st cli.StatusJSON
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		ctxs := map[string]int{}
		for _, l := range st.Loaded {
			ctxs[l.Name] = l.ContextLength
		}
		if st.OllamaVersion != "0.17.4" || st.Yielded || ctxs["qwen2.5-coder:1.5b"] != 8192 || ctxs["llama3.2:1b"] != 4096 {
			t.Errorf("status --json = %+v", st)
		}
		for _, key := range []string{`"ollama_version"`, `"yielded"`, `"context_length"`, `"cpu_percent"`} {
			if !strings.Contains(out, key) {
				t.Errorf("status --json has no %s: %s", key, out)
			}
		}
	})
	step("models", []string{"models"}, 0, func(t *testing.T, out, _ string) {
		lines := strings.Split(out, "\n")
		if !strings.HasPrefix(lines[0], "estimates for Ollama 0.17.4 at http://127.0.0.1:1") ||
			!strings.Contains(lines[1], "CONTEXT") || !strings.Contains(lines[1], "MAX CONTEXT NOW") {
			t.Fatalf("models header:\n%s", out)
		}
		coder := lines[slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "qwen2.5-coder:1.5b") })]
		if !strings.Contains(coder, "4096, loaded at 8192") || !strings.Contains(coder, "loaded") {
			t.Errorf("coder's row %q does not say it is loaded at 8192 of its own 4096", coder)
		}
	})
	step("yield", []string{"yield"}, 0, func(t *testing.T, out, errs string) {
		if out != "gave the GPU back: unloaded llama3.2:1b, qwen2.5-coder:1.5b\n" && out != "gave the GPU back: unloaded qwen2.5-coder:1.5b, llama3.2:1b\n" {
			t.Errorf("stdout %q", out)
		}
		if n := f.rt.RunningNames(); len(n) != 0 {
			t.Errorf("still on the card after yield: %v", n)
		}
		if errs != "" {
			t.Errorf("a running instance remembers them; stderr says %q", errs)
		}
	})
	step("status while yielded", []string{"status"}, 0, func(t *testing.T, out, _ string) {
		if !strings.Contains(out, "gave the GPU back (to restore: ") || !strings.Contains(out, "until vramkeeper restore") {
			t.Errorf("status:\n%s", out)
		}
	})
	step("load while yielded", []string{"load", "llama3.2:1b"}, cli.ExitYielded, func(t *testing.T, _, errs string) {
		if !strings.Contains(errs, "gave the GPU back") || !strings.Contains(errs, "restore") {
			t.Errorf("stderr %q", errs)
		}
	})
	step("restore", []string{"restore"}, 0, func(t *testing.T, out, _ string) {
		if !strings.HasPrefix(out, "restored ") || !strings.Contains(out, "llama3.2:1b") || !strings.Contains(out, "qwen2.5-coder:1.5b") {
			t.Errorf("stdout %q", out)
		}
		if v, _ := f.m.Snapshot().Model("qwen2.5-coder:1.5b"); v.LoadedCtx != 8192 {
			t.Errorf("restored at %d, want the 8192 it had", v.LoadedCtx)
		}
	})
	step("restore again", []string{"restore"}, 0, func(t *testing.T, out, _ string) {
		if out != "nothing to restore\n" {
			t.Errorf("stdout %q", out)
		}
	})
	step("history", []string{"history"}, 0, func(t *testing.T, out, _ string) {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var gave, restored int
		for _, l := range lines {
			if strings.Contains(l, "  gave back ") {
				gave++
			}
			if strings.Contains(l, "  restored ") {
				restored++
			}
		}
		if gave != 2 || restored != 2 || !strings.Contains(lines[len(lines)-1], "restored") {
			t.Errorf("history (newest last) does not show two models given back, then restored:\n%s", out)
		}
	})
	step("history --json", []string{"history", "--json"}, 0, func(t *testing.T, out, _ string) {
		var evs []manager.Event
		if err := json.Unmarshal([]byte(out), &evs); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		kinds := map[manager.EventKind]int{}
		for _, e := range evs {
			kinds[e.Kind]++
		}
		if kinds[manager.EventYielded] != 2 || kinds[manager.EventRestored] != 2 {
			t.Errorf("history --json kinds %v", kinds)
		}
	})
	chart := filepath.Join(t.TempDir(), "vram.svg")
	step("history --plot", []string{"history", "--plot", chart}, 0, func(t *testing.T, out, errs string) {
		b, err := os.ReadFile(chart)
		if err != nil || !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("qwen2.5-coder:1.5b")) {
			t.Fatalf("chart %s: %v\n%.300s", chart, err, b)
		}
		if !strings.Contains(errs, "wrote the last hour's chart to "+chart) || out == "" {
			t.Errorf("stdout %q stderr %q", out, errs)
		}
	})
	step("history --plot of an unknown kind", []string{"history", "--plot", filepath.Join(t.TempDir(), "vram.gif")}, cli.ExitError, func(t *testing.T, _, errs string) {
		if !strings.Contains(errs, ".svg or .png") {
			t.Errorf("stderr %q", errs)
		}
	})
}
