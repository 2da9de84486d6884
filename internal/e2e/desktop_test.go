//go:build linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"io"
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
	"github.com/vramkeeper/vramkeeper/internal/testwait"
)

// Environment the test reads; scripts/e2e-desktop.sh sets the first three
// and passes the others on.
const (
	envEnable = "VRAMKEEPER_E2E"       // "1" runs the test
	envBinary = "VRAMKEEPER_E2E_BIN"   // the vramkeeper binary; built when unset
	envShots  = "VRAMKEEPER_E2E_SHOTS" // where screenshots go; a temp dir when unset
	// envRealistic "1" plays the realistic scenario (realistic_test.go):
	// models of released sizes on a claimed 8 GiB card, for the README's
	// pictures. Unset, the quick scenario with two tiny models runs.
	envRealistic = "VRAMKEEPER_E2E_REALISTIC"
	// envHold is how long the realistic scenario holds each state, so the
	// chart has a shape (a Go duration; default defaultHold).
	envHold = "VRAMKEEPER_E2E_HOLD"
)

// waits bound the waits of a scenario. Nothing sleeps as an assertion:
// every wait polls a condition and fails with what it last saw.
type waits struct {
	start time.Duration // the tray item and the first menu
	load  time.Duration // a model load (or a restore of several) in Ollama
	ui    time.Duration // the menu, the icon, a notification, the window
	quit  time.Duration // the app's exit after Quit
}

// quickWaits are generous for tiny models: on a busy 2-core machine a
// model load (runner start on the CPU) takes seconds and the first frame
// of a software-rendered window more.
var quickWaits = waits{start: 90 * time.Second, load: 90 * time.Second, ui: 30 * time.Second, quit: 30 * time.Second}

const title = "VRAM Keeper"

// TestDesktop runs the real binary against a real Ollama and checks it as a
// desktop would see it: the tray item, its icon and menu over D-Bus, the
// notifications of evictions, and the window on the X server.
func TestDesktop(t *testing.T) {
	if os.Getenv(envEnable) != "1" {
		t.Skipf("set %s=1 and run under Xvfb and a private session bus: scripts/e2e-desktop.sh", envEnable)
	}
	for _, k := range []string{"DISPLAY", "DBUS_SESSION_BUS_ADDRESS"} {
		if os.Getenv(k) == "" {
			t.Fatalf("%s is not set: run scripts/e2e-desktop.sh", k)
		}
	}
	realistic := os.Getenv(envRealistic) == "1"
	var hold time.Duration
	if realistic {
		var err error
		if hold, err = holdFrom(os.Getenv(envHold)); err != nil {
			t.Fatalf("%s: %v", envHold, err)
		}
	}
	w := quickWaits
	if realistic {
		w = realisticWaits
	}
	s := newSession(t, w)

	srv := ollamatest.Start(t)
	s.srv = srv
	flags := quickFlags
	if realistic {
		pushRealistic(s)
		flags = realisticFlags
	} else {
		// Two small models with names the task tables tell apart: chat
		// picks tiny-chat, code_generation tiny-coder. Sizes put each at a
		// few percent of the 1 GiB card we claim, so the gauge visibly
		// moves.
		spec := ggufgen.Spec{Arch: "llama", Layers: 4, Embd: 256, Heads: 4, KVHeads: 4, FFN: 512,
			Vocab: ggufgen.MinVocab, ContextLength: 2048, WeightType: "F32"}
		for _, name := range []string{"tiny-chat:latest", "tiny-coder:latest"} {
			var b bytes.Buffer
			if err := ggufgen.Write(&b, spec); err != nil {
				t.Fatal(err)
			}
			srv.CreateModel(t, name, b.Bytes())
		}
		s.step("ollama %s up with 2 models", srv.URL)
	}

	s.startApp(flags)
	if realistic {
		realisticScenario(s, hold)
	} else {
		quickScenario(s)
	}
	s.quit()
}

// quickFlags claim a 1 GiB card with one model at a time, so that the
// second load evicts the first.
var quickFlags = []string{"--vram", "1GiB", "--budget", "768MiB", "--max-loaded", "1", "--ctx", "1024"}

// quickScenario loads through the tray, evicts by loading for another
// task, and unloads, with screenshots of the three tabs on the way.
func quickScenario(s *session) {
	t := s.t
	// Load through the tray: the model runs in Ollama, the menu lists it,
	// the icon changes.
	s.click("Load best for", "chat")
	first := waitRunning(t, s.srv, s.w.load, 1, "")
	s.step("ollama runs %s", first)
	s.waitListed(first)
	s.waitIconChanged()
	s.step("menu lists %s; icon changed", first)

	s.waitWindow()
	s.waitTab(0)
	s.shoot("models.png")
	s.step("screenshot of the Models tab")

	// Load for another task with --max-loaded 1: the first model is
	// evicted in Ollama and a notification says so.
	s.click("Load best for", "code_generation")
	second := waitRunning(t, s.srv, s.w.load, 1, first)
	s.step("ollama runs %s; %s evicted", second, first)
	s.waitEvictionNote(first)
	testwait.Until(t, "the menu lists "+second+" and not "+first, s.w.ui, func() (bool, string) {
		m := s.menu()
		_, ok := m.Find(second, "Unload")
		_, old := m.Find(first)
		return ok && !old, m.String()
	})

	s.clickTab(1)
	s.shoot("history.png")
	s.step("screenshot of the History tab")

	// Unload from the tray menu.
	s.click(second, "Unload")
	waitRunning(t, s.srv, s.w.load, 0, "")
	s.waitNoneListed()
	s.step("ollama runs nothing after Unload")

	s.clickTab(2)
	s.shoot("settings.png")
	s.step("screenshot of the Settings tab")
}

// session is one run of the desktop: the desktop side on the bus, Ollama,
// the app and its tray item, and the window once it is mapped.
type session struct {
	t     *testing.T
	w     waits
	began time.Time
	shots string
	bin   string
	desk  *Desktop
	srv   *ollamatest.Server
	app   *appProc
	item  Item
	idle  image.Image     // the tray icon with nothing loaded
	win   image.Rectangle // the window, once waitWindow found it
}

// newSession takes the bus names: systray registers when the app starts,
// so the desktop side comes first.
func newSession(t *testing.T, w waits) *session {
	s := &session{t: t, w: w, began: time.Now(), shots: failDir(t)}
	if err := os.MkdirAll(s.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	s.bin = binary(t)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for name, img := range lastFailed {
			p := filepath.Join(s.shots, name)
			if err := SavePNG(p, img, img.Bounds()); err == nil {
				t.Logf("screen when the tabs were not found: %s", p)
			}
		}
	})
	desk, err := NewDesktop()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { desk.Close() })
	s.desk = desk
	return s
}

func (s *session) step(format string, args ...any) {
	s.t.Helper()
	s.t.Logf("[%6.1fs] %s", time.Since(s.began).Seconds(), fmt.Sprintf(format, args...))
}

// startApp starts the app against s.srv with flags, waits for its tray item
// and for a menu that offers Load best for, and keeps the idle icon.
func (s *session) startApp(flags []string) {
	t := s.t
	s.app = startApp(t, s.bin, s.srv.URL.String(), flags)
	app := s.app
	s.step("app started (pid %d)", app.cmd.Process.Pid)
	// Interrupted (scripts/e2e-desktop.sh stopped), the test binary would
	// exit without running cleanups; Pdeathsig takes the app and the Ollama
	// server down, but not the runner Ollama started. Stop them here.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	t.Cleanup(func() { signal.Stop(sig); close(sig) })
	go func() {
		if got, ok := <-sig; ok {
			_ = syscall.Kill(-app.cmd.Process.Pid, syscall.SIGKILL)
			s.srv.Stop()
			fmt.Fprintf(os.Stderr, "TestDesktop: %v: stopped the app and Ollama\n", got)
			os.Exit(2)
		}
	}()

	item, err := s.desk.WaitItem(s.w.start)
	if err != nil {
		t.Fatalf("tray: %v", err)
	}
	s.item = item
	s.step("tray item registered: %s %s", item.Service, item.Path)
	testwait.Until(t, "the menu offers Load best for once Ollama is seen", s.w.start, func() (bool, string) {
		m := s.menu()
		lb, ok := m.Find("Load best for", "chat")
		_, none := m.Find("No models loaded")
		return ok && lb.Enabled && none, m.String()
	})
	idle, err := s.desk.IconPixmap(item)
	if err != nil {
		t.Fatal(err)
	}
	s.idle = idle
	saveIcon(t, filepath.Join(s.shots, "e2e-tray-idle.png"), idle)
}

func (s *session) menu() MenuItem {
	s.t.Helper()
	m, err := s.desk.Menu(s.item)
	if err != nil {
		s.t.Fatalf("tray menu: %v", err)
	}
	return m
}

// click clicks the enabled menu item at path (each element a label prefix).
func (s *session) click(path ...string) {
	s.t.Helper()
	m := s.menu()
	it, ok := m.Find(path...)
	if !ok || !it.Enabled {
		s.t.Fatalf("tray menu has no enabled %q:\n%s", path, m)
	}
	if err := s.desk.Click(s.item, it.ID); err != nil {
		s.t.Fatalf("clicking %q: %v", path, err)
	}
	s.step("clicked tray %q", path)
}

// waitListed waits until the menu lists each model with an Unload item.
func (s *session) waitListed(models ...string) {
	s.t.Helper()
	testwait.Until(s.t, fmt.Sprintf("the menu lists %v with Unload", models), s.w.ui, func() (bool, string) {
		m := s.menu()
		for _, name := range models {
			if _, ok := m.Find(name, "Unload"); !ok {
				return false, m.String()
			}
		}
		return true, ""
	})
}

// waitNoneListed waits until the menu says no models are loaded.
func (s *session) waitNoneListed() {
	s.t.Helper()
	testwait.Until(s.t, "the menu says no models are loaded", s.w.ui, func() (bool, string) {
		m := s.menu()
		_, none := m.Find("No models loaded")
		return none, m.String()
	})
}

// waitIconChanged waits until the tray icon is no longer the idle one and
// saves it.
func (s *session) waitIconChanged() {
	s.t.Helper()
	testwait.Until(s.t, "the tray icon changes after the load", s.w.ui, func() (bool, string) {
		img, err := s.desk.IconPixmap(s.item)
		if err != nil {
			return false, err.Error()
		}
		if samePixels(img, s.idle) {
			return false, "IconPixmap is the idle icon"
		}
		saveIcon(s.t, filepath.Join(s.shots, "e2e-tray-loaded.png"), img)
		return true, ""
	})
}

// waitNote waits for a notification whose summary holds summary (any
// case) and whose body names model.
func (s *session) waitNote(summary, model string) Note {
	s.t.Helper()
	note, err := s.desk.WaitNote(s.w.ui, func(n Note) bool {
		return strings.Contains(strings.ToLower(n.Summary), summary) && strings.Contains(n.Body, model)
	})
	if err != nil {
		s.t.Fatalf("notification %q about %s: %v; got %q", summary, model, err, s.desk.Notes())
	}
	s.step("notification %q: %q", note.Summary, note.Body)
	return note
}

func (s *session) waitEvictionNote(model string) Note {
	s.t.Helper()
	return s.waitNote("evict", model)
}

// quit clicks Quit: the process exits by itself, cleanly, and takes the
// window with it.
func (s *session) quit() {
	t := s.t
	app := s.app
	s.click("Quit")
	select {
	case <-app.exited:
		if app.err != nil {
			t.Fatalf("app exited with %v after Quit", app.err)
		}
	case <-time.After(s.w.quit):
		t.Fatalf("app still running %s after Quit", s.w.quit)
	}
	// The window is a child process in the app's process group: Quit ends
	// it too.
	testwait.Until(t, "no process of the app (the window included) is left after Quit", s.w.quit, func() (bool, string) {
		err := syscall.Kill(-app.cmd.Process.Pid, 0)
		return err == syscall.ESRCH, fmt.Sprintf("kill(-%d, 0): %v", app.cmd.Process.Pid, err)
	})
	s.step("app quit cleanly; screenshots in %s", s.shots)
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
	// common are the flags that point a command at this instance's
	// Ollama, config, state folder and API; env is its environment.
	common []string
	env    []string
}

// startApp runs the desktop app with flags (the card, the budget) and every
// file it writes (config, state, autostart entry, Fyne's caches) in a temp
// dir, and stops it on cleanup: SIGTERM, then SIGKILL to its process group.
func startApp(t *testing.T, bin, ollamaURL string, flags []string) *appProc {
	return startAppEnv(t, bin, ollamaURL, flags, nil)
}

// startAppEnv is startApp with env (KEY=value) added to the app's
// environment, replacing what the test's has.
func startAppEnv(t *testing.T, bin, ollamaURL string, flags, extra []string) *appProc {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	for _, d := range []string{home, filepath.Join(dir, "runtime")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// A --listen in flags is the address (another instance's, say);
	// otherwise a free one.
	listen := ""
	if i := slices.Index(flags, "--listen"); i >= 0 && i+1 < len(flags) {
		listen, flags = flags[i+1], slices.Delete(slices.Clone(flags), i, i+2)
	} else {
		var err error
		if listen, err = ollamatest.FreeAddr(); err != nil {
			t.Fatal(err)
		}
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
	common := []string{"--ollama", ollamaURL,
		"--config", filepath.Join(dir, "config.toml"),
		"--state-dir", filepath.Join(dir, "state"),
		"--listen", listen}
	cmd := exec.Command(bin, slices.Concat(common, flags, []string{"-v"})...)
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OLLAMA_") || strings.HasPrefix(k, "XDG_") || k == "HOME" || k == "LANG" || strings.HasPrefix(k, "LC_") ||
			slices.ContainsFunc(extra, func(e string) bool { return strings.HasPrefix(e, k+"=") }) {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, extra...)
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
	p := &appProc{cmd: cmd, log: logPath, exited: make(chan struct{}), common: common, env: cmd.Env}
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

// cli runs a vramkeeper command against the running instance, as a user
// in a terminal would (the same config, state folder and API address), and
// returns what it printed; an error carries its exit status and output.
func (p *appProc) cli(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.cmd.Path, slices.Concat(args, p.common)...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vramkeeper %s: %w (within %s)\n%s", strings.Join(args, " "), err, timeout, out)
	}
	return string(out), nil
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

// waitRunning waits until Ollama runs exactly n models, none of them
// notName, and returns the first one's name.
func waitRunning(t *testing.T, srv *ollamatest.Server, timeout time.Duration, n int, notName string) string {
	t.Helper()
	var name string
	testwait.Until(t, fmt.Sprintf("/api/ps lists %d model(s), not %q", n, notName), timeout, func() (bool, string) {
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

// waitWindow waits until the window is mapped and keeps its place.
func (s *session) waitWindow() {
	s.t.Helper()
	testwait.Until(s.t, "the window "+title+" is mapped", s.w.ui, func() (bool, string) {
		var err error
		s.win, err = FindWindow(title)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// waitTab waits until the screen shows tab i selected, twice in a row at
// the same place (the indicator slides to a new tab), and returns the tab
// bar.
func (s *session) waitTab(i int) Tabs {
	s.t.Helper()
	var tabs Tabs
	var last image.Rectangle
	testwait.Until(s.t, fmt.Sprintf("tab %d is selected", i), s.w.ui, func() (bool, string) {
		var err error
		tabs, err = findTabs(s.win, fmt.Sprintf("failed-tab-%d.png", i))
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
// bar moves when the header above it changes (a
// status line appears), so it is found afresh before each click, and
// clicked again if a click landed while it moved.
func (s *session) clickTab(i int) {
	s.t.Helper()
	testwait.Until(s.t, fmt.Sprintf("clicking tab %d selects it", i), s.w.ui, func() (bool, string) {
		tabs, err := findTabs(s.win, fmt.Sprintf("failed-click-%d.png", i))
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
			if now, err := findTabs(s.win, ""); err == nil && now.Selected() == i {
				return true, ""
			}
		}
		return false, fmt.Sprintf("clicked %v in %+v; tab %d not selected after 5s", tabs.Labels[i], tabs, i)
	})
	s.waitTab(i)
}

// findTabs finds the tab bar on a fresh screenshot. If the test then fails
// and failName is set, the screenshot is kept as failName: the screen is
// the explanation.
func findTabs(win image.Rectangle, failName string) (Tabs, error) {
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

// shoot saves the window as name in the screenshot folder and returns the
// whole screen, for close-ups.
func (s *session) shoot(name string) image.Image {
	s.t.Helper()
	img, err := Screenshot()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := SavePNG(filepath.Join(s.shots, name), img, s.win); err != nil {
		s.t.Fatal(err)
	}
	return img
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

// The README's pictures are taller than the window opens (1280x660), so
// that the Settings form shows whole, Save button included; the screen
// (scripts/e2e-desktop.sh) is 1280x800.
const pictureWidth, pictureHeight = 1280, 720

// pictures takes the README's screenshots: each tab of the window, and
// close-ups of the card bar (stackbar.png) and the chart (chart.png).
func (s *session) pictures() {
	t := s.t
	if err := ResizeWindow(title, pictureWidth, pictureHeight); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, fmt.Sprintf("the window is %dx%d", pictureWidth, pictureHeight), s.w.ui, func() (bool, string) {
		var err error
		s.win, err = FindWindow(title)
		if err != nil {
			return false, err.Error()
		}
		return s.win.Dx() == pictureWidth && s.win.Dy() == pictureHeight, fmt.Sprint(s.win)
	})
	s.clickTab(0)
	screen := s.shoot("models.png")
	bar, err := CardBarArea(screen, s.win)
	if err != nil {
		t.Fatal(err)
	}
	s.save("stackbar.png", screen, bar)
	s.step("screenshots of the Models tab and the card bar")

	s.clickTab(1)
	screen = s.shoot("history.png")
	// The tabs on this very screen: the chart starts under them.
	tabs, err := FindTabs(screen, s.win)
	if err != nil {
		t.Fatal(err)
	}
	chart, err := ChartArea(screen, s.win, tabs)
	if err != nil {
		t.Fatal(err)
	}
	s.save("chart.png", screen, chart)
	s.step("screenshots of the History tab and the chart")

	s.clickTab(2)
	s.shoot("settings.png")
	s.step("screenshot of the Settings tab")
}

// save saves the part r of a screenshot as name in the screenshot folder.
func (s *session) save(name string, img image.Image, r image.Rectangle) {
	s.t.Helper()
	if err := SavePNG(filepath.Join(s.shots, name), img, r); err != nil {
		s.t.Fatal(err)
	}
}
