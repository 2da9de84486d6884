// Command vramkeeper keeps local Ollama models inside a VRAM budget: a tray
// app with no arguments, a headless server with "serve", and a CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	// First among the imports in init order: see its doc.
	"early.invalid/quietinit"

	"github.com/vramkeeper/vramkeeper/app"
	"github.com/vramkeeper/vramkeeper/internal/cli"
	"github.com/vramkeeper/vramkeeper/internal/instance"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/ollama"
)

// The window drives the tray's manager through the API.

func main() {
	quietinit.Restore()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, &cli.Desktop{Tray: desktop, Window: window})
	stop()
	os.Exit(code)
}

// desktop runs the manager, the local API and the tray until Quit or a
// signal. The tray starts no GUI toolkit; the window is a `vramkeeper
// window` child process that exists only while it is open.
func desktop(ctx context.Context, env *cli.Env) error {
	// One tray per state folder: a second one asks the first to open its
	// window, and goes.
	if err := env.Own("tray"); err != nil {
		var held *instance.HeldError
		if !errors.As(err, &held) {
			return err
		}
		if herr := env.OpenRunningWindow(ctx, held); herr != nil {
			return fmt.Errorf("%w; its window could not be opened: %w", err, herr)
		}
		fmt.Fprintf(env.Stderr, "vramkeeper: already running (%s); opened its window\n", held.Holder)
		return nil
	}
	if err := noDisplay(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program for the window: %w", err)
	}
	// The window's "Start Ollama" asks the tray: the server must outlive
	// the window, and Quit stops it.
	ollama := app.NewOllamaServer(app.OllamaServerOptions{URL: env.OllamaURL.String(), Log: env.Log, Env: serveEnv(ctx, env)})
	defer ollama.Stop()
	env.OllamaBin = ollama.Bin()
	trayWatch := app.NewTrayWatch(env.Log)
	defer trayWatch.Close()
	env.NoTray = func() bool { return !trayWatch.Shown() }
	env.StartOllama = func(ctx context.Context) (wire.StartOllamaResponse, error) {
		st, err := ollama.Start(ctx)
		return wire.StartOllamaResponse{
			Started: err == nil, Ours: st.Ours, PID: st.PID, Restarts: st.Restarts, LastExit: st.LastExit,
		}, err
	}
	openReq := make(chan struct{}, 1)
	env.OpenWindow = func() error {
		select {
		case openReq <- struct{}{}:
		default: // one is pending already
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopManager := env.Start(ctx)
	defer stopManager()
	apiDone := make(chan struct{})
	apiDown := make(chan string, 1)
	go func() {
		defer close(apiDone)
		// The tray is useful without the API (e.g. a second instance holds
		// the port), so a failure is logged and notified, not fatal; the
		// window, which needs it, then says so.
		if err := env.ServeAPI(ctx); err != nil && ctx.Err() == nil {
			env.Log.Error("local API not serving: the window and the command line cannot reach this instance", "err", err)
			apiDown <- err.Error()
		}
	}()
	args := cli.WindowArgs(env.Flags, env.ConfigPath, env.Config.Listen)
	err = app.RunTray(ctx, app.TrayOptions{
		Keeper:     env.Manager,
		Config:     env.Config,
		ConfigPath: env.ConfigPath,
		Tasks:      env.Manager.Snapshot().Tasks,
		Log:        env.Log,
		Window: func() *exec.Cmd {
			cmd := exec.Command(self, args...)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			cmd.Env = app.WindowEnv(os.Environ())
			return cmd
		},
		StartHidden:  env.Flags.Hidden,
		Ollama:       ollama,
		OpenRequests: openReq,
		TrayShown:    trayWatch.Shown,
		APIDown:      apiDown,
	})
	cancel()
	<-apiDone
	return err
}

// window runs the window against the tray's API until it is closed.
func window(ctx context.Context, env *cli.Env) error {
	if err := noDisplay(); err != nil {
		return err
	}
	c, me, err := env.DialWindow(ctx, 15*time.Second)
	var other *client.OtherInstanceError
	if errors.As(err, &other) {
		// Another instance's API is on our address: say so, and show
		// none of its models.
		env.Log.Warn("the window has no API of its own", "err", err)
		return app.RunProblem(ctx, env.WindowProblem(other))
	}
	if err != nil {
		return err
	}
	k := client.NewRemote(c, env.Log)
	k.Expect(env.Identity())
	if err := k.Refresh(ctx); err != nil {
		return fmt.Errorf("reading the tray's state: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); k.Run(ctx) }()
	err = app.RunWindow(ctx, app.Options{
		Keeper:     k,
		Config:     env.Config,
		ConfigPath: env.ConfigPath,
		Tasks:      k.Snapshot().Tasks,
		Log:        env.Log,
		OllamaURL:  env.OllamaURL.String(),
		OllamaBin:  me.OllamaBin,
		NoTray:     me.NoTray,
		StartOllama: func(ctx context.Context) error {
			if err := c.StartOllama(ctx); err != nil {
				return fmt.Errorf("asking the tray to start Ollama: %w", err)
			}
			return nil
		},
	})
	cancel()
	<-done
	return err
}

// serveEnv is what the `ollama serve` the tray starts is told, so that
// Ollama's own decisions (llama.cpp's fit from v0.30, its model count, its
// context length) agree with VRAM Keeper's budget: its version is not
// known before it runs, and the variables are harmless to older ones.
func serveEnv(ctx context.Context, env *cli.Env) []string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var card uint64
	if v, err := env.GPU.Read(ctx); err == nil && v.Measured() {
		card = v.Total
	}
	budget, _ := config.ParseSize(env.Config.Budget) // validated when the config was read
	return ollama.ServeEnv(ollama.ServeSettings{CardBytes: card, BudgetBytes: budget.Budget(card),
		MaxLoaded: max(env.Config.MaxLoaded, 0), ContextLength: env.Config.ContextLength})
}
