package app

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/widget"
)

// Fyne's GLFW driver polls input and checks for a repaint from a ticker on
// the main thread 60 times a second (fyne v2.7.1
// internal/driver/glfw/loop.go), busy or not: an empty window idles at
// about 2 % of a core here, and each wake-up is a hand-off between
// threads for the Go scheduler. While nobody uses the window, the
// governor puts the main thread to sleep for most of each second (a
// sleeping loop drops the ticks it misses), so the window redraws and
// polls input about 5 times a second, then less than twice a second once
// it has been left alone a while; any input, an open text field or a
// progress bar that moves brings back the full rate at once.
const (
	// idleAfter: no input for this long and the window naps.
	idleAfter = 3 * time.Second
	// Each sleep of the main thread, so also the most the first input
	// after an idle spell waits, is a twentieth of the time without input,
	// from minNap to maxNap (reached after 12 s): every wake-up costs the
	// Go scheduler a burst of work (its monitor thread spins up again), so
	// fewer of them is what brings the idle window under 1 % of a core.
	// awake lets at least one of the driver's ticks run between naps (they
	// come every 16.7 ms).
	minNap = 200 * time.Millisecond
	maxNap = 600 * time.Millisecond
	awake  = 20 * time.Millisecond
)

// governor decides when the window naps. touch and setBusy may be called
// from any goroutine.
type governor struct {
	now  func() time.Time
	last atomic.Int64 // the last input, Unix nanoseconds
	busy atomic.Bool  // something moves (a load's progress): no naps
}

func newGovernor(now func() time.Time) *governor {
	g := &governor{now: now}
	g.touch()
	return g
}

// touch records input.
func (g *governor) touch() { g.last.Store(g.now().UnixNano()) }

func (g *governor) setBusy(b bool) { g.busy.Store(b) }

// next says how long to nap now (0: not now) and, if not, how long until
// it may.
func (g *governor) next() (napFor, wait time.Duration) {
	if g.busy.Load() {
		return 0, idleAfter
	}
	idle := g.now().Sub(time.Unix(0, g.last.Load()))
	if idle >= idleAfter {
		return min(max(idle/20, minNap), maxNap), 0
	}
	return 0, idleAfter - idle
}

// run naps the main thread while the window is idle, until ctx ends.
// typing says whether a text field has the focus (asked on the main
// thread), which keystrokes into it do not otherwise show.
func (g *governor) run(ctx context.Context, typing func() bool) {
	for {
		napFor, wait := g.next()
		if napFor == 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		done := make(chan struct{})
		fyne.Do(func() {
			defer close(done)
			if typing() {
				g.touch()
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(napFor):
			}
		})
		select {
		case <-ctx.Done():
			return
		case <-done:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(awake):
		}
	}
}

// watchInput makes the window's input touch g: the pointer moving over it
// (through a root that Fyne asks for its cursor on every move), keys
// while no widget has the focus, the window gaining the focus.
func watchInput(a fyne.App, w fyne.Window, content fyne.CanvasObject, g *governor) fyne.CanvasObject {
	if dc, ok := w.Canvas().(desktop.Canvas); ok {
		dc.SetOnKeyDown(func(*fyne.KeyEvent) { g.touch() })
	}
	a.Lifecycle().SetOnEnteredForeground(g.touch)
	return newInputRoot(content, g.touch)
}

// inputRoot shows its content and says when the pointer moves over the
// window: Fyne asks every object under the pointer for its cursor.
type inputRoot struct {
	widget.BaseWidget
	content fyne.CanvasObject
	moved   func()
}

func newInputRoot(content fyne.CanvasObject, moved func()) *inputRoot {
	r := &inputRoot{content: content, moved: moved}
	r.ExtendBaseWidget(r)
	return r
}

func (r *inputRoot) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(r.content) }

// Cursor is desktop.Cursorable's; widgets under the pointer set their own.
func (r *inputRoot) Cursor() desktop.Cursor {
	r.moved()
	return desktop.DefaultCursor
}

// startGovernor runs g until ctx ends, counted in wg.
func startGovernor(ctx context.Context, wg *sync.WaitGroup, w fyne.Window, g *governor) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.run(ctx, func() bool {
			_, ok := w.Canvas().Focused().(*widget.Entry)
			return ok
		})
	}()
}
