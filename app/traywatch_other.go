//go:build !linux

package app

import "log/slog"

// TrayWatch tells whether the desktop shows tray icons: Windows' notification
// area and macOS's menu bar always do.
type TrayWatch struct{}

// NewTrayWatch returns a watch that always says shown.
func NewTrayWatch(*slog.Logger) *TrayWatch { return &TrayWatch{} }

// Shown is always true here.
func (*TrayWatch) Shown() bool { return true }

// Close does nothing.
func (*TrayWatch) Close() {}
