// Package app is VRAM Keeper's desktop app: a tray icon that shows VRAM use
// against the budget, a menu to unload and load models, and a window with
// every model, the history and the settings. The tray (RunTray) runs in the
// manager's process without a GUI toolkit; the window (RunWindow) runs in a
// child process only while it is open, over the local API. Both are thin
// clients: a click becomes one manager call, and everything on screen is
// rebuilt from the manager's next snapshot.
package app

import (
	"context"
	"log/slog"

	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/keeper"
)

// AppID is the application's unique ID (also FyneApp.toml's).
const AppID = "io.github.vramkeeper"

// Options configure Run.
type Options struct {
	// Keeper is the running manager (its Run goroutine already started).
	Keeper keeper.Keeper
	// Config is the settings the manager was started with; the Settings tab
	// edits a copy and saves it to ConfigPath ("" disables saving).
	Config     config.Config
	ConfigPath string
	// Tasks are the task names for "Load best for" (score Tables.TaskNames()).
	Tasks []string
	Log   *slog.Logger
	// OllamaURL is the server the manager talks to, shown in the banner.
	OllamaURL string
	// StartOllama, when set, is what the banner's "Start Ollama" button
	// does: the window asks the tray, which starts and watches `ollama
	// serve`, so that the server outlives the window. Without it the
	// button is hidden.
	StartOllama func(ctx context.Context) error
	// OllamaBin is the `ollama` the tray starts; "" when none is
	// installed, and the banner says how to install it.
	OllamaBin string
	// NoTray: the desktop shows no tray icon, so closing the window quits
	// VRAM Keeper; the window says so.
	NoTray bool
}
