//go:build !windows

package app

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"syscall"

	"fyne.io/systray"
	"github.com/godbus/dbus/v5"
)

// busNotifier sends notifications to org.freedesktop.Notifications on the
// session bus.
type busNotifier struct{ conn *dbus.Conn }

func openNotifier(*slog.Logger) (notifier, error) {
	// systray logs and carries on without a bus, then panics on quit:
	// check first.
	bus, err := dbus.ConnectSessionBus()
	if err != nil {
		return nil, fmt.Errorf("tray: no session bus (run under a desktop session or dbus-run-session): %w", err)
	}
	return busNotifier{bus}, nil
}

func (b busNotifier) Notify(ctx context.Context, n Note) error { return Notify(ctx, b.conn, n) }
func (b busNotifier) Close()                                   { b.conn.Close() }

// Notify shows a desktop notification through
// org.freedesktop.Notifications on conn.
func Notify(ctx context.Context, conn *dbus.Conn, n Note) error {
	obj := conn.Object("org.freedesktop.Notifications", "/org/freedesktop/Notifications")
	call := obj.CallWithContext(ctx, "org.freedesktop.Notifications.Notify", 0,
		"VRAM Keeper", uint32(0), "", n.Title, n.Content, []string{}, map[string]dbus.Variant{}, int32(-1))
	if call.Err != nil {
		return fmt.Errorf("notify: %w", call.Err)
	}
	return nil
}

// startSystray registers the StatusNotifierItem; its D-Bus loop needs no
// thread of its own.
func startSystray() (end func()) {
	start, end := systray.RunWithExternalLoop(nil, nil)
	start()
	return end
}

// trayIcon: StatusNotifierItem takes the PNG as it is.
func trayIcon(png []byte) ([]byte, error) { return png, nil }

// askToClose: the window quits on SIGTERM (main's signal context).
func askToClose(cmd *exec.Cmd) (ask, release func() error, err error) {
	ask = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	return ask, func() error { return nil }, nil
}

// closeOnRequest: SIGTERM already ends the window's context.
func closeOnRequest(context.Context, context.CancelFunc) (stop func()) { return func() {} }
