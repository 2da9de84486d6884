//go:build linux

package e2e

import (
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/internal/testwait"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
)

// problemTitle is the title of the window that says why there is no
// model list (app.ProblemTitle; the app package is not linked into this
// test).
const problemTitle = "VRAM Keeper: no local API"

// TestAddressTaken: a second VRAM Keeper, on another state folder and
// another Ollama, started with the first one's listen address (a copied
// config, a second user session). Its API cannot listen: its window says
// so and what to do (the first one's PID, --listen) and never shows the
// first one's models, and its commands never list or change them.
func TestAddressTaken(t *testing.T) {
	if os.Getenv(envEnable) != "1" {
		t.Skipf("set %s=1 and run under Xvfb and a private session bus: scripts/e2e-desktop.sh", envEnable)
	}
	w := quickWaits
	desk, err := NewDesktopWithoutTray()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { desk.Close() })
	shots := failDir(t)
	bin := binary(t)

	first := startServe(t, bin, w)
	listen, firstModel, firstCLI := first.listen, first.model, first.cli

	// The second: a tray on the same address, its Ollama not running.
	second := startAppEnv(t, bin, "http://"+ollamatest.FreeAddrT(t), []string{"--listen", listen},
		[]string{"PATH=" + pathWithout("ollama")})
	// Mapped, then sized and drawn: its Close button shows.
	var win image.Rectangle
	last := false
	testwait.Until(t, "the window "+problemTitle+" is drawn, with its Close button", w.ui, func() (bool, string) {
		var err error
		if win, err = FindWindow(problemTitle); err != nil {
			return false, err.Error()
		}
		img, err := Screenshot()
		if err != nil {
			return false, err.Error()
		}
		bs := FindButtons(img, win)
		now := len(bs) == 1
		stable := now && last
		last = now
		return stable, fmt.Sprintf("window %v, buttons %v", win, bs)
	})
	if _, err := FindWindow(title); err == nil {
		t.Errorf("the second instance shows a model window (%q) beside %q", title, problemTitle)
	}
	shootWindow(t, shots, "first-run-address-taken.png", win)
	testwait.Until(t, "the second instance's log says its API could not listen, on whose account, and what to do", w.ui, func() (bool, string) {
		log := tail(second.log, 64<<10)
		for _, want := range []string{"could not listen on " + listen, fmt.Sprintf("PID %d", first.pid), "--listen "} {
			if !strings.Contains(log, want) {
				return false, fmt.Sprintf("no %q in:\n%s", want, log)
			}
		}
		return true, ""
	})

	// The tray says so too, in a notification (here, where it has no icon,
	// beside the window).
	note, err := desk.WaitNote(w.ui, func(n Note) bool { return strings.Contains(n.Body, "could not listen on "+listen) })
	if err != nil {
		t.Errorf("no notification that the API could not listen: %v; got %q", err, desk.Notes())
	} else if !strings.Contains(note.Body, fmt.Sprintf("PID %d", first.pid)) || !strings.Contains(note.Body, "--listen ") {
		t.Errorf("the notification %q does not say who holds the address and what to do", note.Body)
	}

	// Its commands: none lists or changes the first one's models.
	out, err := second.cli(w.ui, "models")
	if err == nil || strings.Contains(out, firstModel) {
		t.Errorf("models for the second instance: %v\n%s\nwant a failure (its Ollama is not running) naming none of the first's models", err, out)
	}
	out, err = second.cli(w.load, "load", firstModel)
	if err == nil {
		t.Errorf("load %s for the second instance succeeded:\n%s", firstModel, out)
	}
	if running := first.srv.Running(t); len(running) != 0 {
		t.Errorf("the second instance's load ran on the first one's Ollama: %v", running)
	}
	if out, err := firstCLI("models"); err != nil || !strings.Contains(out, firstModel) {
		t.Errorf("the first instance after the second's commands: %v\n%s", err, out)
	}
	if _, err := FindWindow(title); err == nil {
		t.Errorf("the second instance shows a model window (%q)", title)
	}

	// Closing its window ends it: no tray icon to come back through.
	closeWindow(t, w, second, win)
	select {
	case <-first.done:
		t.Errorf("the first instance exited with the second:\n%s", first.log.String())
	default:
	}
}

// TestAddressTakenWithATray: the same on a desktop that shows tray icons.
// The second instance's tray stays (its window may be closed), so its
// menu keeps saying that its commands and window cannot reach it; the
// notification said it once, and notifications may be off.
func TestAddressTakenWithATray(t *testing.T) {
	if os.Getenv(envEnable) != "1" {
		t.Skipf("set %s=1 and run under Xvfb and a private session bus: scripts/e2e-desktop.sh", envEnable)
	}
	w := quickWaits
	desk, err := NewDesktop()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { desk.Close() })
	bin := binary(t)
	first := startServe(t, bin, w)
	startAppEnv(t, bin, "http://"+ollamatest.FreeAddrT(t), []string{"--listen", first.listen, "--hidden"},
		[]string{"PATH=" + pathWithout("ollama")})
	it, err := desk.WaitItem(w.start)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the tray's menu says it has no local API", w.ui, func() (bool, string) {
		m, err := desk.Menu(it)
		if err != nil {
			return false, err.Error()
		}
		labels := m.Labels()
		return slices.ContainsFunc(labels, func(l string) bool { return strings.HasPrefix(l, "No local API") }), strings.Join(labels, "\n")
	})
}

// firstServe is a VRAM Keeper serving on an address that a second one is
// then given.
type firstServe struct {
	srv           *ollamatest.Server
	listen, model string
	pid           int
	done          chan struct{}
	log           *strings.Builder
	cli           func(args ...string) (string, error)
}

// startServe starts `vramkeeper serve` on a free address, with a model of
// its own in its Ollama, and waits until its API answers and it lists the
// model.
func startServe(t *testing.T, bin string, w waits) *firstServe {
	t.Helper()
	srv := ollamatest.Start(t)
	f := &firstServe{srv: srv, model: "first-only:latest", listen: ollamatest.FreeAddrT(t), done: make(chan struct{}), log: &strings.Builder{}}
	srv.Create(t, f.model, ggufgen.Spec{Arch: "llama", Layers: 2, Embd: 128, Heads: 2, KVHeads: 2, FFN: 256,
		Vocab: ggufgen.MinVocab, ContextLength: 2048, WeightType: "F32"})
	dir := t.TempDir()
	// No warm start: nothing may load unless a command asks.
	config := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(config, []byte("warm_start = \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--ollama", srv.URL.String(), "--state-dir", filepath.Join(dir, "state"),
		"--config", config, "--listen", f.listen}
	cmd := exec.Command(bin, append([]string{"serve"}, flags...)...)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.Stdout, cmd.Stderr = f.log, f.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.pid = cmd.Process.Pid
	go func() { _ = cmd.Wait(); close(f.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-f.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-f.done
		}
	})
	f.cli = func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), w.ui)
		defer cancel()
		c := exec.CommandContext(ctx, bin, append(args, flags...)...)
		c.Env = cmd.Env
		out, err := c.CombinedOutput()
		return string(out), err
	}
	// Its API holds the address before the second starts.
	testwait.Until(t, "the first instance's API answers on "+f.listen, w.start, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, "http://"+f.listen, "")
		if err != nil {
			return false, err.Error()
		}
		me, err := c.Instance(ctx)
		return err == nil && me.PID == f.pid, fmt.Sprintf("%+v %v", me, err)
	})
	testwait.Until(t, "the first instance lists its model", w.start, func() (bool, string) {
		out, err := f.cli("models")
		return err == nil && strings.Contains(out, f.model), fmt.Sprintf("%v\n%s", err, out)
	})
	return f
}
