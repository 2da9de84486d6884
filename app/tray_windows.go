package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"fyne.io/systray"
	"git.sr.ht/~jackmordaunt/go-toast/wintoast"
	"golang.org/x/sys/windows"

	"github.com/vramkeeper/vramkeeper/manager/statefile"
)

// toastNotifier shows notifications as Windows toasts through the Windows
// Runtime's COM API (git.sr.ht/~jackmordaunt/go-toast's wintoast): no
// PowerShell window, no process per notification. An unpackaged app must
// name itself (an AppUserModelID) in the user's registry first; SetAppData
// does that with our name and icon.
type toastNotifier struct {
	icon string // a PNG file the toast shows; "" for none
}

func openNotifier(log *slog.Logger) (notifier, error) {
	n := toastNotifier{}
	if dir, err := os.UserCacheDir(); err == nil { // %LOCALAPPDATA%
		p := filepath.Join(dir, "vramkeeper", "toast-icon.png")
		if b, err := EncodePNG(AppIcon()); err == nil && statefile.WriteFile(p, b, 0o644) == nil {
			n.icon = p
		}
	}
	if err := wintoast.SetAppData(wintoast.AppData{AppID: toastAppID, IconPath: n.icon}); err != nil {
		// The tray works without toasts (Wine has none, for one).
		log.Warn("notifications off: registering for toasts failed", "err", err)
	}
	return n, nil
}

// toastAppID is what Windows shows as the sender, and groups toasts by.
const toastAppID = "VRAM Keeper"

func (t toastNotifier) Notify(_ context.Context, n Note) error {
	if err := wintoast.Push(toastXML(n, t.icon)); err != nil {
		return fmt.Errorf("toast: %w", err)
	}
	return nil
}

func (toastNotifier) Close() {}

// toastXML is a ToastGeneric toast: the icon, a title and a line of text,
// escaped, since model names and error messages are outside input.
func toastXML(n Note, icon string) string {
	var b strings.Builder
	b.WriteString(`<toast activationType="foreground" duration="short"><visual><binding template="ToastGeneric">`)
	if icon != "" {
		b.WriteString(`<image placement="appLogoOverride" src="` + xmlEscape(icon) + `"/>`)
	}
	b.WriteString(`<text>` + xmlEscape(n.Title) + `</text>`)
	if n.Content != "" {
		b.WriteString(`<text>` + xmlEscape(n.Content) + `</text>`)
	}
	b.WriteString(`</binding></visual></toast>`)
	return b.String()
}

var xmlEscaper = strings.NewReplacer(`&`, "&amp;", `<`, "&lt;", `>`, "&gt;", `"`, "&quot;", `'`, "&apos;")

func xmlEscape(s string) string { return xmlEscaper.Replace(s) }

// startSystray runs the notification-area icon's window and its message
// loop on one locked thread: Windows delivers a window's messages (the
// icon's clicks, its menu) only to the thread that created it, and
// systray's external loop pumps on whatever thread its goroutine lands.
func startSystray() (end func()) {
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		systray.Run(func() { close(ready) }, nil)
	}()
	select {
	case <-ready:
	case <-done: // it could not create its window; the calls below log
	}
	return func() {
		systray.Quit()
		<-done
	}
}

// trayIcon: the notification area takes ICO files.
func trayIcon(png []byte) ([]byte, error) { return ICO(png) }

// closeEventEnv names the event the tray sets to ask its window to close:
// Windows has no SIGTERM, and TerminateProcess would skip the window's
// clean exit.
const closeEventEnv = "VRAMKEEPER_CLOSE_EVENT"

var closeEvents atomic.Uint64

// askToClose creates a named event for cmd's window and passes its name
// in the environment.
func askToClose(cmd *exec.Cmd) (ask, release func() error, err error) {
	name := fmt.Sprintf(`Local\vramkeeper-window-%d-%d-%d`, os.Getpid(), time.Now().UnixNano(), closeEvents.Add(1))
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, nil, err
	}
	h, err := windows.CreateEvent(nil, 1, 0, p) // manual reset: stays set
	if err != nil {
		return nil, nil, fmt.Errorf("close event: %w", err)
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, closeEventEnv+"="+name)
	ask = func() error { return windows.SetEvent(h) }
	release = func() error { return windows.CloseHandle(h) }
	return ask, release, nil
}

// closeOnRequest cancels the window's context when the tray sets the
// event named in the environment; stop ends the wait.
func closeOnRequest(ctx context.Context, cancel context.CancelFunc) (stop func()) {
	name := os.Getenv(closeEventEnv)
	if name == "" {
		return func() {}
	}
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return func() {}
	}
	ev, err := windows.OpenEvent(windows.SYNCHRONIZE, false, p)
	if err != nil {
		return func() {}
	}
	// quit wakes the wait when the window closes by itself.
	quit, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		windows.CloseHandle(ev)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r, _ := windows.WaitForMultipleObjects([]windows.Handle{ev, quit}, false, windows.INFINITE)
		if r == windows.WAIT_OBJECT_0 {
			cancel()
		}
	}()
	return func() {
		_ = windows.SetEvent(quit)
		<-done
		windows.CloseHandle(ev)
		windows.CloseHandle(quit)
	}
}
