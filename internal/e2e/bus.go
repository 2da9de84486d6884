package e2e

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// Item is a StatusNotifierItem as registered with the watcher: the bus name
// of its owner and its object path.
type Item struct {
	Service string
	Path    dbus.ObjectPath
}

// Note is one org.freedesktop.Notifications.Notify call.
type Note struct {
	App, Summary, Body string
}

// Desktop owns the tray host and notification daemon names on the session
// bus and records what apps send them. Create it before starting the app:
// fyne.io/systray registers its item when it starts (and again whenever the
// watcher name changes hands).
type Desktop struct {
	conn *dbus.Conn

	mu    sync.Mutex
	items []Item
	notes []Note
	// changed is closed and replaced whenever items or notes change.
	changed chan struct{}
}

const (
	watcherName    = "org.kde.StatusNotifierWatcher"
	watcherPath    = "/StatusNotifierWatcher"
	notifyName     = "org.freedesktop.Notifications"
	notifyPath     = "/org/freedesktop/Notifications"
	itemInterface  = "org.kde.StatusNotifierItem"
	menuInterface  = "com.canonical.dbusmenu"
	busCallTimeout = 10 * time.Second
)

// NewDesktop connects to the session bus ($DBUS_SESSION_BUS_ADDRESS) with a
// private connection and takes both names. It fails if another process owns
// either: the test must not talk to a real desktop.
func NewDesktop() (*Desktop, error) { return newDesktop(watcherName, notifyName) }

// NewDesktopWithoutTray is a desktop that shows no tray icons (GNOME
// without its AppIndicator extension): it owns the notification daemon's
// name only, and nothing owns the watcher's.
func NewDesktopWithoutTray() (*Desktop, error) { return newDesktop(notifyName) }

func newDesktop(names ...string) (*Desktop, error) {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return nil, fmt.Errorf("connecting to the session bus: %w", err)
	}
	d := &Desktop{conn: conn, changed: make(chan struct{})}
	if err := conn.Export(watcher{d}, watcherPath, watcherName); err != nil {
		conn.Close()
		return nil, fmt.Errorf("exporting the watcher: %w", err)
	}
	if err := conn.Export(notifier{d}, notifyPath, notifyName); err != nil {
		conn.Close()
		return nil, fmt.Errorf("exporting the notification daemon: %w", err)
	}
	for _, name := range names {
		reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("requesting %s: %w", name, err)
		}
		if reply != dbus.RequestNameReplyPrimaryOwner {
			conn.Close()
			return nil, fmt.Errorf("requesting %s: someone else owns it (reply %d); run under a private bus (dbus-run-session)", name, reply)
		}
	}
	return d, nil
}

// Close drops the connection and with it both names.
func (d *Desktop) Close() error { return d.conn.Close() }

// Conn is the desktop's bus connection, for calls to the item.
func (d *Desktop) Conn() *dbus.Conn { return d.conn }

func (d *Desktop) notify() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// Items returns the items registered so far.
func (d *Desktop) Items() []Item {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Item(nil), d.items...)
}

// Notes returns the notifications received so far.
func (d *Desktop) Notes() []Note {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Note(nil), d.notes...)
}

// WaitItem waits for the first registered item.
func (d *Desktop) WaitItem(timeout time.Duration) (Item, error) {
	var it Item
	err := d.wait(timeout, func() bool {
		if len(d.items) == 0 {
			return false
		}
		it = d.items[0]
		return true
	})
	if err != nil {
		return it, fmt.Errorf("no RegisterStatusNotifierItem call: %w", err)
	}
	return it, nil
}

// WaitNote waits for a notification that match accepts.
func (d *Desktop) WaitNote(timeout time.Duration, match func(Note) bool) (Note, error) {
	var n Note
	err := d.wait(timeout, func() bool {
		for _, x := range d.notes {
			if match(x) {
				n = x
				return true
			}
		}
		return false
	})
	if err != nil {
		return n, fmt.Errorf("no matching Notify call among %d: %w", len(d.Notes()), err)
	}
	return n, nil
}

var errTimeout = errors.New("timed out")

// wait runs cond under the lock whenever something arrives, until it holds.
func (d *Desktop) wait(timeout time.Duration, cond func() bool) error {
	deadline := time.After(timeout)
	for {
		d.mu.Lock()
		ok, ch := cond(), d.changed
		d.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("after %s: %w", timeout, errTimeout)
		}
	}
}

// watcher is the part of org.kde.StatusNotifierWatcher that
// fyne.io/systray calls.
type watcher struct{ d *Desktop }

// RegisterStatusNotifierItem records the item. systray passes its object
// path; the service is then the caller's unique name, as KDE's watcher
// assumes for an argument that starts with "/".
func (w watcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	it := Item{Service: string(sender), Path: dbus.ObjectPath(service)}
	if len(service) == 0 || service[0] != '/' {
		it = Item{Service: service, Path: "/StatusNotifierItem"}
	}
	w.d.mu.Lock()
	w.d.items = append(w.d.items, it)
	w.d.notify()
	w.d.mu.Unlock()
	return nil
}

// RegisterStatusNotifierHost is accepted and ignored.
func (w watcher) RegisterStatusNotifierHost(string) *dbus.Error { return nil }

// notifier is org.freedesktop.Notifications, recording every Notify.
type notifier struct{ d *Desktop }

func (n notifier) Notify(app string, replaces uint32, icon, summary, body string,
	actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	n.d.notes = append(n.d.notes, Note{App: app, Summary: summary, Body: body})
	n.d.notify()
	return uint32(len(n.d.notes)), nil
}

func (n notifier) GetCapabilities() ([]string, *dbus.Error) {
	return []string{"body"}, nil
}

func (n notifier) GetServerInformation() (string, string, string, string, *dbus.Error) {
	return "vramkeeper-e2e", "vramkeeper", "1", "1.2", nil
}

func (n notifier) CloseNotification(uint32) *dbus.Error { return nil }
