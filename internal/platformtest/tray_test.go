//go:build linux

package platformtest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/internal/testwait"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

const (
	screenW, screenH = 1280, 800
	display          = ":77" // the chroot's own X server; its /tmp is its own
	taskbarH         = 24    // Wine's taskbar, with the notification area
)

// screen is Xvfb inside the Wine chroot, with Wine's desktop (a taskbar
// with a notification area) on it.
type screen struct {
	w   wineEnv
	env []string
}

func (s screen) shot(t *testing.T, name string) *image.RGBA {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := s.w.cmd(ctx, s.env, "import", "-window", "root", "/tmp/vk-shot.png").CombinedOutput(); err != nil {
		t.Fatalf("screenshot: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(s.w.root, "tmp", "vk-shot.png"))
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv(EnvShots); dir != "" {
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rgba := image.NewRGBA(img.Bounds())
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			rgba.Set(x, y, img.At(x, y))
		}
	}
	return rgba
}

func (s screen) click(t *testing.T, x, y, button int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := s.w.cmd(ctx, s.env, "xdotool", "mousemove", fmt.Sprint(x), fmt.Sprint(y), "click", fmt.Sprint(button)).CombinedOutput(); err != nil {
		t.Fatalf("xdotool: %v\n%s", err, out)
	}
}

// changed is the bounding box of the pixels that differ in r between a
// and b, and how many there are.
func changed(a, b *image.RGBA, r image.Rectangle) (image.Rectangle, int) {
	var box image.Rectangle
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.RGBAAt(x, y) != b.RGBAAt(x, y) {
				n++
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return box, n
}

// gaugeColours are the tray icon's: the frame, the empty scale, and the
// fill when Ollama answers or not (app/icon.go).
var gaugeColours = []color.RGBA{
	{0x30, 0x30, 0x30, 0xff}, {0xec, 0xec, 0xec, 0xff},
	{0x2e, 0xa0, 0x43, 0xff}, {0x8c, 0x8c, 0x8c, 0xff},
}

func near(a, b color.RGBA) bool {
	d := func(x, y uint8) int { return max(int(x), int(y)) - min(int(x), int(y)) }
	return d(a.R, b.R) < 24 && d(a.G, b.G) < 24 && d(a.B, b.B) < 24
}

// gaugePixels counts the pixels in r that have the gauge's colours; a
// tray icon has its frame and its scale (empty or filled) at any size.
func gaugePixels(img *image.RGBA, r image.Rectangle) (frame, scale int) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := img.RGBAAt(x, y)
			if near(c, gaugeColours[0]) {
				frame++
			}
			for _, s := range gaugeColours[1:] {
				if near(c, s) {
					scale++
				}
			}
		}
	}
	return frame, scale
}

// TestWindowsTrayUnderWine: the Windows build's tray starts under Wine on a
// virtual screen; the gauge shows in Wine's notification area, its menu
// opens on a click, and the window, asked for, draws (screenshots in
// VRAMKEEPER_SHOTS).
func TestWindowsTrayUnderWine(t *testing.T) {
	w := needWine(t)
	srv := ollamatest.Start(t)
	for name, spec := range tinySpecs {
		srv.Create(t, name, spec)
	}
	s := screen{w: w, env: []string{"DISPLAY=" + display}}
	ctx, cancel := context.WithCancel(context.Background())
	var procs []*exec.Cmd
	defer func() {
		cancel()
		for _, p := range procs {
			_ = p.Wait()
		}
	}()
	startBG := func(args ...string) *exec.Cmd {
		c := w.cmd(ctx, s.env, args...)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, c)
		return c
	}
	startBG("Xvfb", display, "-screen", "0", fmt.Sprintf("%dx%dx24", screenW, screenH), "-nolisten", "tcp")
	waitFor(t, "the X server", func() bool {
		return w.cmd(ctx, s.env, "xdpyinfo").Run() == nil
	})
	// Wine's desktop alone first: the notification area without our icon,
	// once the taskbar is drawn and two looks a second apart agree.
	blank := s.shot(t, "x-blank")
	startBG("wine", "explorer", fmt.Sprintf("/desktop=shell,%dx%d", screenW, screenH))
	bar := image.Rect(0, screenH-taskbarH, screenW, screenH)
	before := blank
	waitFor(t, "Wine's taskbar, drawn and still", func() bool {
		prev := before
		before = s.shot(t, "wine-desktop")
		_, drawn := changed(blank, before, bar)
		_, moved := changed(prev, before, bar)
		return drawn > 1000 && moved == 0
	})

	state := w.prefixPath("users", "root", "AppData", "Local", "vramkeeper-tray")
	_ = os.RemoveAll(state)
	listen := ollamatest.FreeAddrT(t)
	startBG("wine", "explorer", fmt.Sprintf("/desktop=shell,%dx%d", screenW, screenH), w.exe, "--hidden",
		"--ollama", srv.URL.String(), "--listen", listen, `--state-dir`, `C:\users\root\AppData\Local\vramkeeper-tray`)
	waitHTTP(t, "http://"+listen+"/api/version", nil, nil)

	// The icon: something new in the notification area (the taskbar's
	// right end), in the gauge's colours.
	tray := image.Rect(screenW-160, screenH-taskbarH, screenW, screenH)
	var shown *image.RGBA
	var box image.Rectangle
	waitFor(t, "the tray icon", func() bool {
		shown = s.shot(t, "wine-tray")
		var n int
		box, n = changed(before, shown, tray)
		frame, scale := gaugePixels(shown, box)
		return n > 20 && frame > 4 && scale > 4
	})
	t.Logf("tray icon at %v", box)

	// A click on the icon opens its menu: a box over the desktop above it.
	cx, cy := (box.Min.X+box.Max.X)/2, (box.Min.Y+box.Max.Y)/2
	var menu image.Rectangle
	for _, button := range []int{3, 1} {
		s.click(t, cx, cy, button)
		// The menu is a box over the desktop; a button that opens none is
		// given up after a few looks.
		for look := 0; look < 10 && menu.Empty(); look++ {
			time.Sleep(500 * time.Millisecond) // polling the screen, bounded by the looks
			opened := s.shot(t, "wine-tray-menu")
			var n int
			menu, n = changed(shown, opened, image.Rect(0, 0, screenW, screenH-taskbarH))
			if n <= 2000 || menu.Dy() <= 60 {
				menu = image.Rectangle{}
			}
		}
		if !menu.Empty() {
			break
		}
	}
	if menu.Empty() {
		t.Fatalf("no menu opened at the tray icon (%d,%d)", cx, cy)
	}
	t.Logf("menu at %v", menu)
	_ = w.cmd(ctx, s.env, "xdotool", "key", "Escape").Run()

	// The window, asked for as a second `vramkeeper` asks: it draws.
	req, _ := http.NewRequest(http.MethodPost, "http://"+listen+"/keeper/v1/window", nil)
	req.Header.Set(wire.VersionHeader, "1")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	waitFor(t, "the window", func() bool {
		_, n := changed(before, s.shot(t, "wine-window"), image.Rect(0, 0, screenW, screenH-taskbarH))
		return n > 100_000
	})
}

// waitFor polls ok for up to 90 s: Wine starts programs slowly.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	testwait.Until(t, what, 90*time.Second, func() (bool, string) { return ok(), "" })
}
