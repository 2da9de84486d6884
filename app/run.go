package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/driver/desktop"
)

// The window's size when it opens: room for every column of the models
// table on a 1366x768 laptop screen.
const windowWidth, windowHeight = 1280, 660

// RunWindow shows the window (Models, History, Settings) and blocks until
// it is closed or ctx ends. It is the only place the Fyne driver (and with
// it GL) starts, so it runs in a process of its own (`vramkeeper window`)
// that exists only while the window is open; the tray is RunTray. Fyne
// needs the main goroutine: call RunWindow from main().
func RunWindow(ctx context.Context, opt Options) error {
	if opt.Keeper == nil {
		return errors.New("app: no keeper")
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	a := fyneapp.NewWithID(AppID)
	if b, err := EncodePNG(AppIcon()); err == nil {
		a.SetIcon(fyne.NewStaticResource("vramkeeper.png", b))
	}
	// uictx ends when the window closes, whatever the reason; it stops
	// every goroutine below.
	uictx, cancel := context.WithCancel(ctx)
	defer cancel()
	// On Windows the tray asks through an event (no SIGTERM there).
	stopWatch := closeOnRequest(uictx, cancel)
	defer stopWatch()

	u := newUI(uictx, a, opt)
	w := a.NewWindow("VRAM Keeper")
	u.gov = newGovernor(time.Now)
	w.SetContent(watchInput(a, w, u.content, u.gov))
	w.Resize(fyne.NewSize(windowWidth, windowHeight))
	w.SetMaster() // closing the window ends the process
	closeOnCtrlW(w)
	u.win = w
	u.apply(opt.Keeper.Snapshot())
	u.history = opt.Keeper.History()

	var wg sync.WaitGroup
	a.Lifecycle().SetOnStarted(func() {
		u.loop(uictx, &wg)
		startGovernor(uictx, &wg, w, u.gov)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-uictx.Done()
			// Quit from ctx (the tray's SIGTERM); harmless if the app is
			// already quitting.
			fyne.Do(a.Quit)
		}()
	})
	w.ShowAndRun()
	cancel()
	wg.Wait()
	u.wg.Wait()
	return nil
}

// closeOnCtrlW closes the window on Ctrl+W (Cmd+W on macOS), as most
// desktop windows do; on a desktop without a window manager (Xvfb) it is
// also the only way to close it.
func closeOnCtrlW(w fyne.Window) {
	w.Canvas().AddShortcut(&desktop.CustomShortcut{KeyName: fyne.KeyW, Modifier: fyne.KeyModifierShortcutDefault},
		func(fyne.Shortcut) { w.Close() })
}
