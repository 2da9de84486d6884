//go:build linux

package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/godbus/dbus/v5"
)

// statusNotifierWatcher is the bus name of the desktop's tray host. GNOME
// without its AppIndicator extension has none: an icon registers nowhere
// and shows nowhere.
const statusNotifierWatcher = "org.kde.StatusNotifierWatcher"

// TrayWatch tells whether the desktop shows tray icons, asking the session
// bus each time: a tray host may come (an extension enabled) or go.
type TrayWatch struct {
	conn *dbus.Conn
	log  *slog.Logger
}

// NewTrayWatch connects to the session bus. Without one there is no tray
// either, and Shown says so.
func NewTrayWatch(log *slog.Logger) *TrayWatch {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		log.Warn("no session bus: no tray icon", "err", err)
		return &TrayWatch{log: log}
	}
	return &TrayWatch{conn: conn, log: log}
}

// Shown reports whether a tray host owns its name on the bus now.
func (w *TrayWatch) Shown() bool {
	if w.conn == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var owned bool
	err := w.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, statusNotifierWatcher).Store(&owned)
	if err != nil {
		// Unknown is taken as shown: quitting with the window would be
		// the worse mistake for someone who has a tray.
		w.log.Warn("asking the session bus for a tray host", "err", err)
		return true
	}
	return owned
}

// Close drops the bus connection.
func (w *TrayWatch) Close() {
	if w.conn != nil {
		w.conn.Close()
	}
}
