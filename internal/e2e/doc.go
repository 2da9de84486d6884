// Package e2e drives the real VRAM Keeper desktop app from the outside, as a
// desktop would: it owns the session bus names a tray host and a
// notification daemon own (org.kde.StatusNotifierWatcher,
// org.freedesktop.Notifications), reads and clicks the app's tray item over
// D-Bus, and looks at and clicks its window on an X server.
//
// The test in this package runs only with VRAMKEEPER_E2E=1, under an X
// server and a private session bus: scripts/e2e-desktop.sh sets them up.
package e2e
