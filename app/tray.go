package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"reflect"
	"sync"
	"time"

	"fyne.io/systray"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/keeper"
)

// The tray runs without any GUI toolkit: Fyne's GLFW driver wakes 60 times
// a second and maps the whole GL stack (over 95 % of the idle CPU and two
// thirds of the memory when measured), which a tray icon does not need. The
// tray speaks StatusNotifierItem through fyne.io/systray (a notification
// area icon on Windows) and sends notifications itself (over D-Bus; as
// toasts on Windows); the window is a child process started on demand
// (`vramkeeper window`), a client of the local API.

// TrayOptions configure RunTray.
type TrayOptions struct {
	// Keeper is the running manager.
	Keeper keeper.Keeper
	// Config and ConfigPath: notifications follow the file's setting, which
	// the window's Settings tab may change while the tray runs.
	Config     config.Config
	ConfigPath string
	// Tasks are the task names for "Load best for".
	Tasks []string
	Log   *slog.Logger
	// Window returns the command that runs the window (`vramkeeper window
	// ...`); nil disables "Open VRAM Keeper".
	Window func() *exec.Cmd
	// StartHidden keeps the window closed at start, as on login.
	StartHidden bool
	// OpenRequests opens the window on each value: a second `vramkeeper`
	// asks through the API. May be nil.
	OpenRequests <-chan struct{}
	// Ollama is the `ollama serve` the tray starts on request; its state
	// shows in the menu and tooltip, and its exits are notified. May be nil.
	Ollama *OllamaServer
	// TrayShown says whether the desktop shows the tray icon now (nil:
	// always). Without one the window is the only way back, so it opens
	// even with StartHidden, and closing it quits.
	TrayShown func() bool
	// APIDown receives why the local API is not serving (its address is
	// taken, and by whom, and what to do), which the tray notifies: the
	// window and the command line cannot reach this instance. May be nil.
	APIDown <-chan string
}

// trayPoll refreshes the tray between events: other programs' VRAM use
// changes without one.
const trayPoll = 2 * time.Second

// windowStopWait is how long the window may take to close on Quit before
// it is killed.
const windowStopWait = 5 * time.Second

// RunTray shows the tray item until Quit or ctx ends. On Linux it needs a
// session bus; it never starts a GUI toolkit.
func RunTray(ctx context.Context, opt TrayOptions) error {
	if opt.Keeper == nil {
		return errors.New("tray: no keeper")
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	nt, err := openNotifier(opt.Log)
	if err != nil {
		return err
	}
	defer nt.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &trayApp{opt: opt, log: opt.Log, notifier: nt, acts: make(chan Action, 8), kick: make(chan struct{}, 1)}
	end := startSystray()
	defer func() {
		// Calls first (cancel ends their waits), then the menu's
		// goroutines, the window, and the tray item last.
		cancel()
		t.calls.Wait()
		if t.stopMenu != nil {
			t.stopMenu()
		}
		t.menuWG.Wait()
		t.win.stop(t.log)
		end()
	}()

	t.win.closed = make(chan struct{}, 1)
	t.refresh(opt.Keeper.Snapshot())
	switch {
	case !opt.StartHidden:
		t.openWindow()
	case !t.trayShown():
		t.log.Warn("this desktop shows no tray icons (no tray host on the session bus): opening the window, though started hidden")
		t.openWindow()
	}
	events, unsubscribe := opt.Keeper.Subscribe(256)
	defer unsubscribe()
	tick := time.NewTicker(trayPoll)
	defer tick.Stop()
	var ollamaChanged <-chan struct{} // nil: no server to watch
	if opt.Ollama != nil {
		ollamaChanged = opt.Ollama.Changed()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-t.kick:
		case <-ollamaChanged:
			t.noteOllama(ctx)
		case <-opt.OpenRequests:
			t.openWindow()
		case why := <-opt.APIDown:
			t.apiDown = true
			t.send(ctx, apiDownNote(why))
		case <-t.win.closed:
			if !t.trayShown() {
				t.log.Info("window closed, and no tray icon to come back through: quitting")
				return nil
			}
		case e, ok := <-events:
			if !ok {
				return nil
			}
			t.note(ctx, e)
		case a := <-t.acts:
			if a.Kind == ActQuit {
				t.log.Info("quit from the tray")
				return nil
			}
			t.do(ctx, a)
		}
		t.refresh(opt.Keeper.Snapshot())
	}
}

// trayApp is the tray's state; only RunTray's goroutine touches it, except
// where noted.
type trayApp struct {
	opt      TrayOptions
	log      *slog.Logger
	notifier notifier

	// acts receives menu clicks from the per-item goroutines.
	acts chan Action
	// kick asks for a refresh when a call finishes.
	kick chan struct{}
	// calls counts goroutines running manager calls.
	calls sync.WaitGroup

	// menuWG counts the goroutines that wait on the current menu's items;
	// stopMenu ends them before the menu is rebuilt.
	menuWG   sync.WaitGroup
	stopMenu func()

	lastMenu []MenuEntry
	// apiDown: the local API could not serve (said once in a
	// notification, which may be off; the menu keeps saying it).
	apiDown  bool
	lastIcon *layout
	lastTip  string
	// lastOllama is the server status last notified about.
	lastOllama OllamaStatus
	notes      noteFilter
	win        windowProc
}

// trayShown: the desktop shows our icon, so the tray outlives the window.
func (t *trayApp) trayShown() bool {
	return t.opt.TrayShown == nil || t.opt.TrayShown()
}

func (t *trayApp) refresh(s manager.Snapshot) {
	if l := GaugeOf(s).layout(); t.lastIcon == nil || *t.lastIcon != l {
		b, err := EncodePNG(drawLayout(l))
		if err == nil {
			b, err = trayIcon(b)
		}
		if err != nil {
			t.log.Error("tray icon", "err", err)
		} else {
			systray.SetIcon(b)
			t.lastIcon = &l
		}
	}
	var st OllamaStatus
	if t.opt.Ollama != nil {
		st = t.opt.Ollama.Status()
	}
	if m := TrayMenu(s, t.opt.Tasks, st, t.apiDown); !reflect.DeepEqual(m, t.lastMenu) {
		t.buildMenu(m)
		t.lastMenu = m
	}
	if tip := Tooltip(s, time.Now()) + OllamaTip(st); tip != t.lastTip {
		systray.SetTitle(tip)
		systray.SetTooltip(tip)
		t.lastTip = tip
	}
}

// buildMenu replaces the whole menu: systray items cannot be reordered,
// and rebuilding from data keeps the menu a function of the snapshot.
func (t *trayApp) buildMenu(entries []MenuEntry) {
	if t.stopMenu != nil {
		t.stopMenu()
		t.menuWG.Wait()
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.stopMenu = cancel
	systray.ResetMenu()
	var add func(parent *systray.MenuItem, es []MenuEntry)
	add = func(parent *systray.MenuItem, es []MenuEntry) {
		for _, e := range es {
			if e.Separator {
				if parent == nil {
					systray.AddSeparator()
				} else {
					parent.AddSeparator()
				}
				continue
			}
			var it *systray.MenuItem
			if parent == nil {
				it = systray.AddMenuItem(e.Label, "")
			} else {
				it = parent.AddSubMenuItem(e.Label, "")
			}
			if e.Disabled {
				it.Disable()
			}
			add(it, e.Children)
			if e.Action.Kind != ActNone {
				t.menuWG.Add(1)
				go t.waitClick(ctx, it, e.Action)
			}
		}
	}
	add(nil, entries)
}

// waitClick forwards an item's clicks until its menu is replaced.
func (t *trayApp) waitClick(ctx context.Context, it *systray.MenuItem, a Action) {
	defer t.menuWG.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-it.ClickedCh:
			select {
			case t.acts <- a:
			case <-ctx.Done():
				return
			}
		}
	}
}

// do performs a menu action; manager calls run off the tray's goroutine
// (a load takes seconds) and ask for a refresh when they end.
func (t *trayApp) do(ctx context.Context, a Action) {
	k := t.opt.Keeper
	switch a.Kind {
	case ActOpen:
		t.openWindow()
		return
	case ActUnload:
		t.call(ctx, "unload "+a.Model, func(ctx context.Context) error { return k.Unload(ctx, a.Model) })
	case ActLoadBest:
		t.call(ctx, "load best for "+a.Task, func(ctx context.Context) error {
			_, err := k.BestModelForTask(ctx, a.Task, "")
			return err
		})
	case ActPause, ActResume:
		paused := a.Kind == ActPause
		t.call(ctx, "pause", func(ctx context.Context) error { return k.SetPaused(ctx, paused) })
	case ActYield:
		// Each model given back is notified as the manager unloads it.
		t.call(ctx, "give the GPU back", func(ctx context.Context) error { _, err := k.Yield(ctx); return err })
	case ActRestore:
		t.call(ctx, "restore models", func(ctx context.Context) error { _, err := k.Restore(ctx); return err })
	}
}

func (t *trayApp) call(ctx context.Context, what string, f func(context.Context) error) {
	t.calls.Add(1)
	go func() {
		defer t.calls.Done()
		if err := f(ctx); err != nil && ctx.Err() == nil {
			// The tray has no place for the message; a failed load also
			// arrives as an event and a notification.
			t.log.Warn(what+" failed", "err", err)
		}
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}()
}

// note sends the notification an event deserves, once.
func (t *trayApp) note(ctx context.Context, e manager.Event) {
	if n, ok := NoteFor(e); ok && t.notes.allow(e) {
		t.send(ctx, n)
	}
}

// TrayMenu is the tray's whole menu: the snapshot's, with a line about the
// Ollama it started and one while its local API does not serve.
func TrayMenu(s manager.Snapshot, tasks []string, st OllamaStatus, apiDown bool) []MenuEntry {
	m := WithOllamaLine(Menu(s, tasks), st)
	if apiDown {
		m = underStatus(m, apiDownLine)
	}
	return m
}

// apiDownLine is the menu's line while the local API does not serve; the
// window, opened from the menu, says why and what to do.
const apiDownLine = "No local API: the window and commands cannot reach this VRAM Keeper"

// apiDownNote says that the local API is not serving, and why.
func apiDownNote(why string) Note {
	return Note{"VRAM Keeper has no local API", "The window and the command line cannot reach this VRAM Keeper: " + why + "."}
}

// noteOllama notifies an exit or a give-up of the server we started.
func (t *trayApp) noteOllama(ctx context.Context) {
	cur := t.opt.Ollama.Status()
	n, ok := OllamaNote(t.lastOllama, cur)
	t.lastOllama = cur
	if ok {
		t.send(ctx, n)
	}
}

// send shows n if the user wants notifications (read from the config
// file, which the window may change).
func (t *trayApp) send(ctx context.Context, n Note) {
	if !t.notificationsOn() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := t.notifier.Notify(ctx, n); err != nil {
		t.log.Warn("notification not sent", "err", err)
	}
}

func (t *trayApp) notificationsOn() bool {
	if t.opt.ConfigPath != "" {
		if c, err := config.Load(t.opt.ConfigPath); err == nil {
			return c.Notifications
		}
	}
	return t.opt.Config.Notifications
}

// notifier shows desktop notifications: over D-Bus on Linux, as toasts on
// Windows.
type notifier interface {
	Notify(ctx context.Context, n Note) error
	Close()
}

func (t *trayApp) openWindow() {
	if t.opt.Window == nil {
		return
	}
	if err := t.win.open(t.opt.Window, t.log); err != nil {
		t.log.Error("opening the window", "err", err)
	}
}

// windowProc is the window's child process, at most one at a time.
type windowProc struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	// ask asks the window to close (SIGTERM; a named event on Windows,
	// which has no SIGTERM).
	ask func() error
	// closed, when set, receives a value when a window exits (a buffer
	// of one).
	closed chan struct{}
}

// open starts the window unless one runs already.
func (w *windowProc) open(newCmd func() *exec.Cmd, log *slog.Logger) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		select {
		case <-w.done:
		default:
			return nil // open already; a second window would be a second client
		}
	}
	cmd := newCmd()
	ask, release, err := askToClose(cmd)
	if err != nil {
		return fmt.Errorf("starting the window: %w", err)
	}
	if err := cmd.Start(); err != nil {
		_ = release()
		return fmt.Errorf("starting the window: %w", err)
	}
	done := make(chan struct{})
	w.cmd, w.done, w.ask = cmd, done, ask
	closed := w.closed
	go func() {
		defer close(done)
		defer release()
		if err := cmd.Wait(); err != nil {
			log.Warn("window process ended", "err", err)
		}
		if closed != nil {
			select {
			case closed <- struct{}{}:
			default:
			}
		}
	}()
	return nil
}

// stop closes the window, if open, and waits for it.
func (w *windowProc) stop(log *slog.Logger) {
	w.mu.Lock()
	cmd, done, ask := w.cmd, w.done, w.ask
	w.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	if err := ask(); err != nil {
		log.Warn("asking the window to close", "err", err)
	}
	select {
	case <-done:
	case <-time.After(windowStopWait):
		log.Warn("window did not close when asked; killing it")
		_ = cmd.Process.Kill()
		<-done
	}
}
