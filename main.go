// Command vramkeeper keeps local Ollama models inside a VRAM budget: a tray
// app with no arguments, a headless server with "serve", and a CLI.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/vramkeeper/vramkeeper/app"
	"github.com/vramkeeper/vramkeeper/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, desktop)
	stop()
	os.Exit(code)
}

// desktop runs the manager and the local API in the background and the Fyne
// app on the main goroutine, until Quit or a signal.
func desktop(ctx context.Context, env *cli.Env) error {
	// Without a display the GUI toolkit panics deep inside; say what to do.
	if runtime.GOOS == "linux" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return errors.New("no display (DISPLAY and WAYLAND_DISPLAY are unset): run `vramkeeper serve` for headless use")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopManager := env.Start(ctx)
	defer stopManager()
	apiDone := make(chan struct{})
	go func() {
		defer close(apiDone)
		// The app is useful without the API (e.g. a second instance holds
		// the port), so a failure is logged, not fatal.
		if err := env.ServeAPI(ctx); err != nil {
			env.Log.Warn("local API not serving", "err", err)
		}
	}()
	err := app.Run(ctx, app.Options{
		Keeper:      env.Manager,
		Config:      env.Config,
		ConfigPath:  env.ConfigPath,
		Tasks:       env.Manager.Options().Tables.TaskNames(),
		Log:         env.Log,
		OllamaURL:   env.OllamaURL.String(),
		StartHidden: env.Flags.Hidden,
	})
	cancel()
	<-apiDone
	return err
}
