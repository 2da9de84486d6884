//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/internal/registrytest"
	"github.com/vramkeeper/vramkeeper/internal/testwait"
)

// TestFirstRun plays a new user's first hour on a desktop that shows no
// tray icons (nothing owns the StatusNotifierWatcher name, as on GNOME
// without its AppIndicator extension): Ollama not installed, then
// installed but not running (Start Ollama in the window), no models (one
// downloaded from a local registry through the window, with its
// progress), and closing the window, which ends the process each time.
// The screenshots of each state are the README's.
func TestFirstRun(t *testing.T) {
	if os.Getenv(envEnable) != "1" {
		t.Skipf("set %s=1 and run under Xvfb and a private session bus: scripts/e2e-desktop.sh", envEnable)
	}
	for _, k := range []string{"DISPLAY", "DBUS_SESSION_BUS_ADDRESS"} {
		if os.Getenv(k) == "" {
			t.Fatalf("%s is not set: run scripts/e2e-desktop.sh", k)
		}
	}
	w := quickWaits
	began := time.Now()
	lastStep := "the start"
	step := func(format string, args ...any) {
		t.Helper()
		lastStep = fmt.Sprintf(format, args...)
		t.Logf("[%6.1fs] %s", time.Since(began).Seconds(), lastStep)
	}
	shots := failDir(t)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for name, img := range lastFailed {
			if p := filepath.Join(shots, name); SavePNG(p, img, img.Bounds()) == nil {
				t.Logf("the screen when %s", p)
			}
		}
		// Last, after the servers' logs: a CI report may show only the
		// end of the output.
		t.Logf("failed %.1fs in, after the step %q (the failure is above the logs)", time.Since(began).Seconds(), lastStep)
	})
	desk, err := NewDesktopWithoutTray()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { desk.Close() })

	// A model in a local registry, pushed there from an Ollama of its own.
	reg := registrytest.Start(t)
	src := ollamatest.Start(t)
	var b bytes.Buffer
	if err := ggufgen.Write(&b, ggufgen.Spec{Arch: "llama", Layers: 4, Embd: 256, Heads: 4, KVHeads: 4, FFN: 512,
		Vocab: ggufgen.MinVocab, ContextLength: 2048, WeightType: "F32"}); err != nil {
		t.Fatal(err)
	}
	src.CreateModel(t, "tiny-chat:latest", b.Bytes())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	model := reg.Name("tiny-chat:latest")
	if err := registrytest.Push(ctx, src.URL, "tiny-chat:latest", model); err != nil {
		t.Fatal(err)
	}
	src.Stop()
	step("%s in the registry", model)

	bin := binary(t)
	ollamaBin, err := ollamatest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	// Nothing answers here until the window's Start Ollama.
	ollamaURL := "http://" + ollamatest.FreeAddrT(t)

	// Not installed: the window says how to install it; closing it quits.
	app := startAppEnv(t, bin, ollamaURL, nil, []string{"PATH=" + pathWithout("ollama")})
	step("app started without ollama on PATH (pid %d)", app.cmd.Process.Pid)
	win := waitMapped(t, w.ui, title)
	waitOneButton(t, w.ui, win, "the Get Ollama button")
	shootWindow(t, shots, "first-run-not-installed.png", win)
	closeWindow(t, w, app, win)
	step("not installed: window shown, closed, app gone")

	// Installed, not running: Start Ollama in the window starts it.
	binDir := t.TempDir()
	if err := os.Symlink(ollamaBin, filepath.Join(binDir, "ollama")); err != nil {
		t.Fatal(err)
	}
	app = startAppEnv(t, bin, ollamaURL, nil, []string{"PATH=" + binDir + ":" + pathWithout("ollama")})
	step("app started with ollama on PATH (pid %d)", app.cmd.Process.Pid)
	win = waitMapped(t, w.ui, title)
	start := waitOneButton(t, w.ui, win, "the Start Ollama button")
	shootWindow(t, shots, "first-run-no-ollama.png", win)
	if err := Click(Center(start)); err != nil {
		t.Fatal(err)
	}
	step("clicked Start Ollama")
	testwait.Until(t, "the tray's Ollama answers, with no models", w.load, func() (bool, string) {
		out, err := app.cli(w.ui, "status", "--json")
		var st struct {
			Up bool `json:"ollama_up"`
		}
		if err == nil {
			err = json.Unmarshal([]byte(out), &st)
		}
		return err == nil && st.Up, out
	})
	step("the status says Ollama answers")
	// The banner's button goes, and the offer's Download waits for a name.
	// The window shows the offer once it has the models listed, which may
	// be after the status says Ollama answers: what comes next types into
	// the offer's field, so it waits for the field.
	waitScreen(t, w.ui, "the offer's name field", func(img image.Image) bool { return FieldAtBottom(img, win) })
	step("the window shows the offer's name field")
	waitButtons(t, w.ui, win, "no Start Ollama button", func(bs []image.Rectangle) bool { return len(bs) == 0 })
	if ok, detail := tableShowsRow(win); ok {
		t.Errorf("with no models, the window shows a table row (%s)", detail)
	}
	shootWindow(t, shots, "first-run-no-models.png", win)
	step("Ollama up; the window offers models")

	// Download from the registry through the window: the name typed into
	// the offer's field, held halfway to see the progress.
	release := reg.Stall()
	defer release()
	if err := Click(image.Pt(win.Min.X+250, win.Max.Y-22)); err != nil {
		t.Fatal(err)
	}
	if err := Type(model); err != nil {
		t.Fatal(err)
	}
	// A name lights Download up.
	waitOneButton(t, w.ui, win, "the offer's Download button, lit by the name")
	if err := Key("Return"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reg.Stalled():
	case <-time.After(w.load):
		shootWindow(t, shots, "failed-pull.png", win)
		t.Fatalf("no download reached the registry within %s", w.load)
	}
	bar := waitOneButton(t, w.ui, win, "the download's progress bar")
	shootWindow(t, shots, "first-run-pulling.png", win)
	step("download held halfway, progress shown")

	// Cancel, at the right end of the bar's line (what was found is the
	// bar's done part): the download stops and nothing is listed, in the
	// window (the offer stays) or by the instance.
	if err := Click(image.Pt(win.Max.X-35, (bar.Min.Y+bar.Max.Y)/2)); err != nil {
		t.Fatal(err)
	}
	// (Download, under the offer, is enabled again: the name is still in
	// its field.)
	waitButtons(t, w.ui, win, "no progress bar after Cancel", func(bs []image.Rectangle) bool {
		return !slices.ContainsFunc(bs, func(b image.Rectangle) bool { return b.Min.Y < bar.Max.Y && b.Max.Y > bar.Min.Y })
	})
	if out, err := app.cli(w.ui, "models"); err != nil || strings.Contains(out, model) {
		t.Fatalf("after Cancel: %v; vramkeeper models:\n%s\nwant no %s", err, out, model)
	}
	if ok, _ := tableShowsRow(win); ok {
		t.Error("after Cancel, the window shows a table row")
	}
	step("cancelled: no progress, nothing listed")

	// Again, to the end: the name is still in the field.
	release()
	if err := Click(image.Pt(win.Min.X+250, win.Max.Y-22)); err != nil {
		t.Fatal(err)
	}
	if err := Key("Return"); err != nil {
		t.Fatal(err)
	}
	note, err := desk.WaitNote(w.ui, func(n Note) bool { return strings.Contains(n.Body, "Downloaded "+model) })
	if err != nil {
		t.Fatalf("no notification of the download: %v; got %q", err, desk.Notes())
	}
	step("notification %q: %q", note.Summary, note.Body)
	testwait.Until(t, "vramkeeper models lists the downloaded model", w.ui, func() (bool, string) {
		out, err := app.cli(w.ui, "models")
		return err == nil && strings.Contains(out, model), out
	})
	waitButtons(t, w.ui, win, "no progress bar", func(bs []image.Rectangle) bool { return len(bs) == 0 })
	// The cancelled download left nothing behind: the model is listed once.
	if out, _ := app.cli(w.ui, "models"); strings.Count(out, model) != 1 {
		t.Errorf("vramkeeper models lists %s %d times:\n%s", model, strings.Count(out, model), out)
	}
	testwait.Until(t, "the window's table shows the downloaded model", w.ui, func() (bool, string) { return tableShowsRow(win) })
	shootWindow(t, shots, "first-run-downloaded.png", win)

	// No tray: closing the window ends the app, and the Ollama it started.
	closeWindow(t, w, app, win)
	step("window closed; the app and its Ollama are gone")
}

// pathWithout is $PATH less the folders that hold an executable named
// name.
func pathWithout(name string) string {
	var keep []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if fi, err := os.Stat(filepath.Join(d, name)); err == nil && fi.Mode()&0o111 != 0 {
			continue
		}
		keep = append(keep, d)
	}
	return strings.Join(keep, string(os.PathListSeparator))
}

// waitMapped waits for the window titled name and returns its place.
func waitMapped(t *testing.T, timeout time.Duration, name string) image.Rectangle {
	t.Helper()
	var win image.Rectangle
	testwait.Until(t, "the window "+name+" is mapped", timeout, func() (bool, string) {
		var err error
		win, err = FindWindow(name)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	return win
}

// waitButtons waits until the high-importance buttons (and progress bars)
// on the window satisfy ok, twice in a row (a frame may be half drawn).
func waitButtons(t *testing.T, timeout time.Duration, win image.Rectangle, what string, ok func([]image.Rectangle) bool) {
	t.Helper()
	var bs []image.Rectangle
	waitScreen(t, timeout, what, func(img image.Image) bool {
		bs = FindButtons(img, win)
		return ok(bs)
	}, func() string { return fmt.Sprintf("buttons %v", bs) })
}

// waitScreen waits until the screen satisfies ok twice in a row (a frame
// may be half drawn); detail says what was last seen when it does not.
func waitScreen(t *testing.T, timeout time.Duration, what string, ok func(image.Image) bool, detail ...func() string) {
	t.Helper()
	last := false
	testwait.Until(t, what, timeout, func() (bool, string) {
		img, err := Screenshot()
		if err != nil {
			return false, err.Error()
		}
		now := ok(img)
		stable := now && last
		last = now
		if !now {
			lastFailed["failed-"+strings.ReplaceAll(what, " ", "-")+".png"] = img
		}
		seen := "a screen that does not show it"
		for _, d := range detail {
			seen = d()
		}
		return stable, seen
	})
}

// waitOneButton waits until the window shows exactly one high-importance
// button (or progress bar), and returns where.
func waitOneButton(t *testing.T, timeout time.Duration, win image.Rectangle, what string) image.Rectangle {
	t.Helper()
	var one image.Rectangle
	waitButtons(t, timeout, win, what, func(bs []image.Rectangle) bool {
		if len(bs) == 1 {
			one = bs[0]
		}
		return len(bs) == 1
	})
	return one
}

// tableShowsRow says whether the window shows the Models table with a row
// in it (not the offer of models, not an empty table).
func tableShowsRow(win image.Rectangle) (bool, string) {
	img, err := Screenshot()
	if err != nil {
		return false, err.Error()
	}
	tabs, err := FindTabs(img, win)
	if err != nil {
		return false, err.Error()
	}
	if TableHasRow(img, win, tabs.Indicator.Max.Y) {
		return true, ""
	}
	lastFailed["failed-table-row.png"] = img
	return false, "no table row under the tabs"
}

func shootWindow(t *testing.T, dir, name string, win image.Rectangle) {
	t.Helper()
	img, err := Screenshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := SavePNG(filepath.Join(dir, name), img, win); err != nil {
		t.Fatal(err)
	}
}

// closeWindow closes the window as a user does (Ctrl+W, after a click on
// its top line, which takes the focus from a text field that would keep
// the shortcut) and waits for the whole app to exit: without a tray icon,
// nothing may stay behind.
func closeWindow(t *testing.T, w waits, app *appProc, win image.Rectangle) {
	t.Helper()
	if err := Click(image.Pt(win.Min.X+win.Dx()/2, win.Min.Y+12)); err != nil {
		t.Fatal(err)
	}
	if err := Key("ctrl+w"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-app.exited:
		if app.err != nil {
			t.Fatalf("app exited with %v after its window closed", app.err)
		}
	case <-time.After(w.quit):
		t.Fatalf("app still running %s after its window closed, with no tray to come back through\nlog:\n%s", w.quit, tail(app.log, 4<<10))
	}
	testwait.Until(t, "no process of the app is left", w.quit, func() (bool, string) {
		err := syscall.Kill(-app.cmd.Process.Pid, 0)
		return err == syscall.ESRCH, fmt.Sprintf("kill(-%d, 0): %v", app.cmd.Process.Pid, err)
	})
}
