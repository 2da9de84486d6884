package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
)

// Environment the test reads; scripts/e2e-desktop.sh sets all of them.
const (
	envEnable = "VRAMKEEPER_E2E"       // "1" runs the test
	envBinary = "VRAMKEEPER_E2E_BIN"   // the vramkeeper binary; built when unset
	envShots  = "VRAMKEEPER_E2E_SHOTS" // where screenshots go; a temp dir when unset
)

// Waits are generous: on a busy 2-core machine a model load (runner start
// on the CPU) takes seconds and the first frame of a software-rendered
// window more. Nothing sleeps as an assertion: every wait polls a condition
// and fails with what it last saw.
const (
	startWait = 90 * time.Second
	loadWait  = 90 * time.Second
	uiWait    = 30 * time.Second
	quitWait  = 30 * time.Second
)

const title = "VRAM Keeper"

// TestDesktop runs the real binary against a real Ollama and checks it as a
// desktop would see it: the tray item, its icon and menu over D-Bus, the
// notification of an eviction, and the window on the X server.
func TestDesktop(t *testing.T) {
	if os.Getenv(envEnable) != "1" {
		t.Skipf("set %s=1 and run under Xvfb and a private session bus: scripts/e2e-desktop.sh", envEnable)
	}
	for _, k := range []string{"DISPLAY", "DBUS_SESSION_BUS_ADDRESS"} {
		if os.Getenv(k) == "" {
			t.Fatalf("%s is not set: run scripts/e2e-desktop.sh", k)
		}
	}
	began := time.Now()
	step := func(format string, args ...any) {
		t.Logf("[%5.1fs] %s", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	shots := failDir(t)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := binary(t)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for name, img := range lastFailed {
			p := filepath.Join(shots, name)
			if err := SavePNG(p, img, img.Bounds()); err == nil {
				t.Logf("screen when the tabs were not found: %s", p)
			}
		}
	})

	// The desktop side first: systray registers when the app starts.
	desk, err := NewDesktop()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { desk.Close() })

	srv := ollamatest.Start(t)
	// Two small models with names the task tables tell apart: chat picks
	// tiny-chat, code_generation tiny-coder. Sizes put each at a few
	// percent of the 1 GiB card we claim, so the gauge visibly moves.
	spec := ggufgen.Spec{Arch: "llama", Layers: 4, Embd: 256, Heads: 4, KVHeads: 4, FFN: 512,
		Vocab: ggufgen.MinVocab, ContextLength: 2048, WeightType: "F32"}
	for _, name := range []string{"tiny-chat:latest", "tiny-coder:latest"} {
		var b bytes.Buffer
		if err := ggufgen.Write(&b, spec); err != nil {
			t.Fatal(err)
		}
		srv.CreateModel(t, name, b.Bytes())
	}
	step("ollama %s up with 2 models", srv.URL)

	app := startApp(t, bin, srv.URL.String())
	step("app started (pid %d)", app.cmd.Process.Pid)
	// Interrupted (scripts/e2e-desktop.sh stopped), the test binary would
	// exit without running cleanups; Pdeathsig takes the app and the Ollama
	// server down, but not the runner Ollama started. Stop them here.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	t.Cleanup(func() { signal.Stop(sig); close(sig) })
	go func() {
		if s, ok := <-sig; ok {
			_ = syscall.Kill(-app.cmd.Process.Pid, syscall.SIGKILL)
			srv.Stop()
			fmt.Fprintf(os.Stderr, "TestDesktop: %v: stopped the app and Ollama\n", s)
			os.Exit(2)
		}
	}()

	// 1. The tray item registers with our watcher.
	item, err := desk.WaitItem(startWait)
	if err != nil {
		t.Fatalf("tray: %v", err)
	}
	step("tray item registered: %s %s", item.Service, item.Path)

	menu := func() MenuItem {
		m, err := desk.Menu(item)
		if err != nil {
			t.Fatalf("tray menu: %v", err)
		}
		return m
	}
	click := func(path ...string) {
		t.Helper()
		m := menu()
		it, ok := m.Find(path...)
		if !ok || !it.Enabled {
			t.Fatalf("tray menu has no enabled %q:\n%s", path, m)
		}
		if err := desk.Click(item, it.ID); err != nil {
			t.Fatalf("clicking %q: %v", path, err)
		}
		step("clicked tray %q", path)
	}
	eventually(t, startWait, "the menu offers Load best for once Ollama is seen", func() (bool, string) {
		m := menu()
		lb, ok := m.Find("Load best for", "chat")
		_, none := m.Find("No models loaded")
		return ok && lb.Enabled && none, m.String()
	})
	idle, err := desk.IconPixmap(item)
	if err != nil {
		t.Fatal(err)
	}
	saveIcon(t, filepath.Join(shots, "e2e-tray-idle.png"), idle)

	// 2. Load through the tray: the model runs in Ollama, the menu lists
	// it, the icon changes.
	click("Load best for", "chat")
	first := waitRunning(t, srv, 1, "")
	step("ollama runs %s", first)
	eventually(t, uiWait, "the menu lists "+first+" with Unload", func() (bool, string) {
		m := menu()
		_, ok := m.Find(first, "Unload")
		return ok, m.String()
	})
	eventually(t, uiWait, "the tray icon changes after the load", func() (bool, string) {
		img, err := desk.IconPixmap(item)
		if err != nil {
			return false, err.Error()
		}
		if samePixels(img, idle) {
			return false, "IconPixmap is the idle icon"
		}
		saveIcon(t, filepath.Join(shots, "e2e-tray-loaded.png"), img)
		return true, ""
	})
	step("menu lists %s; icon changed", first)

	win := waitWindow(t)
	waitTab(t, win, 0)
	shoot(t, filepath.Join(shots, "models.png"), win)
	step("screenshot of the Models tab")

	// 3. Load for another task with --max-loaded 1: the first model is
	// evicted in Ollama and a notification says so.
	click("Load best for", "code_generation")
	second := waitRunning(t, srv, 1, first)
	step("ollama runs %s; %s evicted", second, first)
	note, err := desk.WaitNote(uiWait, func(n Note) bool {
		return strings.Contains(strings.ToLower(n.Summary), "evict") && strings.Contains(n.Body, first)
	})
	if err != nil {
		t.Fatalf("eviction notification: %v; got %q", err, desk.Notes())
	}
	step("notification %q: %q", note.Summary, note.Body)
	eventually(t, uiWait, "the menu lists "+second+" and not "+first, func() (bool, string) {
		m := menu()
		_, ok := m.Find(second, "Unload")
		_, old := m.Find(first)
		return ok && !old, m.String()
	})

	clickTab(t, win, 1)
	shoot(t, filepath.Join(shots, "history.png"), win)
	step("screenshot of the History tab")

	// 4. Unload from the tray menu.
	click(second, "Unload")
	waitRunning(t, srv, 0, "")
	eventually(t, uiWait, "the menu says no models are loaded", func() (bool, string) {
		m := menu()
		_, none := m.Find("No models loaded")
		return none, m.String()
	})
	step("ollama runs nothing after Unload")

	clickTab(t, win, 2)
	shoot(t, filepath.Join(shots, "settings.png"), win)
	step("screenshot of the Settings tab")

	// 5. Quit from the tray: the process exits by itself, cleanly.
	click("Quit")
	select {
	case <-app.exited:
		if app.err != nil {
			t.Fatalf("app exited with %v after Quit", app.err)
		}
	case <-time.After(quitWait):
		t.Fatalf("app still running %s after Quit", quitWait)
	}
	// The window is a child process in the app's process group: Quit ends
	// it too.
	eventually(t, quitWait, "no process of the app (the window included) is left after Quit", func() (bool, string) {
		err := syscall.Kill(-app.cmd.Process.Pid, 0)
		return err == syscall.ESRCH, fmt.Sprintf("kill(-%d, 0): %v", app.cmd.Process.Pid, err)
	})
	step("app quit cleanly; screenshots in %s", shots)
}

// failDir is where screenshots go: $VRAMKEEPER_E2E_SHOTS, which outlives
// the test, or a temp dir.
func failDir(t *testing.T) string {
	if d := os.Getenv(envShots); d != "" {
		return d
	}
	if shotsTemp == "" {
		shotsTemp = t.TempDir()
	}
	return shotsTemp
}

var shotsTemp string

// binary is $VRAMKEEPER_E2E_BIN or a fresh build of the module's main
// package.
func binary(t *testing.T) string {
	if p := os.Getenv(envBinary); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out := filepath.Join(t.TempDir(), "vramkeeper")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building vramkeeper: %v\n%s", err, b)
	}
	return out
}

type appProc struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// startApp runs the desktop app with every file it writes (config, state,
// autostart entry, Fyne's caches) in a temp dir, and stops it on cleanup:
// SIGTERM, then SIGKILL to its process group.
func startApp(t *testing.T, bin, ollamaURL string) *appProc {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	for _, d := range []string{home, filepath.Join(dir, "runtime")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	listen, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	// No warm start: the scenario loads through the tray from an empty card.
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte("warm_start = \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "app.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin,
		"--ollama", ollamaURL,
		"--vram", "1GiB", "--budget", "768MiB",
		"--max-loaded", "1", "--ctx", "1024",
		"--config", filepath.Join(dir, "config.toml"),
		"--state-dir", filepath.Join(dir, "state"),
		"--listen", listen, "-v")
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OLLAMA_") || strings.HasPrefix(k, "XDG_") || k == "HOME" || k == "LANG" || strings.HasPrefix(k, "LC_") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_STATE_HOME="+filepath.Join(home, ".local", "state"),
		"XDG_RUNTIME_DIR="+filepath.Join(dir, "runtime"),
		"LANG=en_US.UTF-8",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	p := &appProc{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(15 * time.Second):
				t.Errorf("app ignored SIGTERM for 15s; killing it")
			}
		}
		// Anything it started (an `ollama serve` from the banner) goes too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("app log tail (%s):\n%s", logPath, tail(logPath, 6<<10))
		}
	})
	return p
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// eventually polls cond until it holds, failing with its last detail.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, still not true: %s\nlast seen:\n%s", timeout, what, detail)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitRunning waits until Ollama runs exactly n models, none of them
// notName, and returns the first one's name.
func waitRunning(t *testing.T, srv *ollamatest.Server, n int, notName string) string {
	t.Helper()
	var name string
	eventually(t, loadWait, fmt.Sprintf("/api/ps lists %d model(s), not %q", n, notName), func() (bool, string) {
		var names []string
		for _, m := range srv.Running(t) {
			names = append(names, m.Name)
		}
		if len(names) > 0 {
			name = names[0]
		}
		return len(names) == n && !slices.Contains(names, notName), fmt.Sprint(names)
	})
	return name
}

func waitWindow(t *testing.T) image.Rectangle {
	t.Helper()
	var win image.Rectangle
	eventually(t, uiWait, "the window "+title+" is mapped", func() (bool, string) {
		var err error
		win, err = FindWindow(title)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	return win
}

// waitTab waits until the screen shows tab i selected, twice in a row at
// the same place (the indicator slides to a new tab), and returns the tab
// bar.
func waitTab(t *testing.T, win image.Rectangle, i int) Tabs {
	t.Helper()
	var tabs Tabs
	var last image.Rectangle
	eventually(t, uiWait, fmt.Sprintf("tab %d is selected", i), func() (bool, string) {
		var err error
		tabs, err = findTabs(t, win, fmt.Sprintf("failed-tab-%d.png", i))
		if err != nil {
			return false, err.Error()
		}
		stable := tabs.Indicator == last
		last = tabs.Indicator
		return tabs.Selected() == i && stable, fmt.Sprintf("%+v, selected %d", tabs, tabs.Selected())
	})
	return tabs
}

// clickTab clicks tab i's label and waits for it to be selected. The tab
// bar moves when the header above it changes (a status line appears), so
// it is found afresh before each click, and clicked again if a click
// landed while it moved.
func clickTab(t *testing.T, win image.Rectangle, i int) {
	t.Helper()
	eventually(t, uiWait, fmt.Sprintf("clicking tab %d selects it", i), func() (bool, string) {
		tabs, err := findTabs(t, win, fmt.Sprintf("failed-click-%d.png", i))
		if err != nil {
			return false, err.Error()
		}
		if tabs.Selected() != i {
			if err := Click(tabs.Labels[i]); err != nil {
				return false, err.Error()
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(300 * time.Millisecond)
			if now, err := findTabs(t, win, ""); err == nil && now.Selected() == i {
				return true, ""
			}
		}
		return false, fmt.Sprintf("clicked %v in %+v; tab %d not selected after 5s", tabs.Labels[i], tabs, i)
	})
	waitTab(t, win, i)
}

// findTabs finds the tab bar on a fresh screenshot. If the test then fails
// and failName is set, the screenshot is kept as failName: the screen is
// the explanation.
func findTabs(t *testing.T, win image.Rectangle, failName string) (Tabs, error) {
	img, err := Screenshot()
	if err != nil {
		return Tabs{}, err
	}
	tabs, err := FindTabs(img, win)
	if err == nil && len(tabs.Labels) != 3 {
		err = fmt.Errorf("found %d tab labels, want 3: %+v", len(tabs.Labels), tabs)
	}
	switch {
	case failName == "":
	case err != nil:
		lastFailed[failName] = img
	default:
		delete(lastFailed, failName)
	}
	return tabs, err
}

// lastFailed holds the last screenshot on which the tabs were not found,
// by file name; TestDesktop saves them if it fails.
var lastFailed = map[string]image.Image{}

func shoot(t *testing.T, path string, win image.Rectangle) {
	t.Helper()
	img, err := Screenshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := SavePNG(path, img, win); err != nil {
		t.Fatal(err)
	}
}

func saveIcon(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := SavePNG(path, img, img.Bounds()); err != nil {
		t.Fatal(err)
	}
}

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return false
			}
		}
	}
	return true
}
