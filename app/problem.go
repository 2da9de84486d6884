package app

import (
	"context"
	"sync"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// ProblemTitle is the title of the window RunProblem shows.
const ProblemTitle = "VRAM Keeper: no local API"

// RunProblem shows a window that says why VRAM Keeper cannot show its
// models and what to do (text), with a Close button, until it is closed
// or ctx ends. Like RunWindow, it needs the main goroutine.
func RunProblem(ctx context.Context, text string) error {
	a := fyneapp.NewWithID(AppID)
	if b, err := EncodePNG(AppIcon()); err == nil {
		a.SetIcon(fyne.NewStaticResource("vramkeeper.png", b))
	}
	w := a.NewWindow(ProblemTitle)
	w.SetContent(problemContent(text, a.Quit))
	w.Resize(fyne.NewSize(720, 260))
	w.SetMaster()
	closeOnCtrlW(w)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	a.Lifecycle().SetOnStarted(func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			fyne.Do(a.Quit)
		}()
	})
	w.ShowAndRun()
	cancel()
	wg.Wait()
	return nil
}

func problemContent(text string, quit func()) fyne.CanvasObject {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	l.Importance = widget.DangerImportance
	closeButton := widget.NewButton("Close", quit)
	closeButton.Importance = widget.HighImportance // the one thing to do here
	// In a scroll: a wrapping label alone asks for the height of its text
	// wrapped at its narrowest, a window taller than the screen with its
	// button off it; scrolled, it wraps at the window's width.
	return container.NewBorder(nil, container.NewHBox(closeButton), nil, nil, container.NewVScroll(l))
}
