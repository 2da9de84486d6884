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
	"fyne.io/systray"
)

// Run starts the desktop app and blocks until the user quits or ctx is
// cancelled. Fyne needs the main goroutine: call Run from main(). The
// manager in opt.Keeper must already be running.
func Run(ctx context.Context, opt Options) error {
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
	// uictx ends when the app quits, whatever the reason; it stops every
	// goroutine below.
	uictx, cancel := context.WithCancel(ctx)
	defer cancel()

	u := newUI(uictx, a, opt)
	w := a.NewWindow("VRAM Keeper")
	w.SetContent(u.content)
	w.Resize(fyne.NewSize(1180, 640))
	u.win = w
	if desk, ok := a.(desktop.App); ok {
		u.tray = desk
		u.setTooltip = func(s string) {
			systray.SetTitle(s)
			systray.SetTooltip(s)
		}
		u.forceTip = 3
		desk.SetSystemTrayWindow(w) // closing the window hides it
	}
	w.SetCloseIntercept(w.Hide)
	u.apply(opt.Keeper.Snapshot())
	u.history = opt.Keeper.History()

	var wg sync.WaitGroup
	a.Lifecycle().SetOnStarted(func() {
		u.loop(uictx, &wg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-uictx.Done()
			// Quit from ctx (the lead's signal handler); harmless if the
			// app is already quitting.
			fyne.Do(a.Quit)
		}()
	})
	if opt.StartHidden {
		a.Run()
	} else {
		w.ShowAndRun()
	}
	cancel()
	wg.Wait()
	u.wg.Wait()
	u.ollama.stop(10 * time.Second)
	return nil
}
