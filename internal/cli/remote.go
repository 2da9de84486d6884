package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/api"
)

// apiBase is the URL of the local API for the configured listen address.
func (e *Env) apiBase() string { return "http://" + e.Config.Listen }

// remote returns the API of a running instance (the tray app or serve), so
// the CLI and the tray share one state; false when none answers.
func (e *Env) remote(ctx context.Context) (Keeper, bool) {
	c, err := api.Dial(ctx, e.apiBase(), e.Config.Token)
	if err == nil {
		r := api.NewRemote(c, e.Log)
		if err = r.Refresh(ctx); err == nil {
			e.Log.Info("using the running instance", "addr", e.Config.Listen)
			return r, true
		}
	}
	if !errors.Is(err, api.ErrNotRunning) {
		e.Log.Warn("running instance not usable; working in-process", "addr", e.Config.Listen, "err", err)
	}
	return nil, false
}

// ServeAPI serves the local API and the Ollama/OpenAI proxy on the
// configured address until ctx ends. The manager must be running.
func (e *Env) ServeAPI(ctx context.Context) error {
	srv := api.New(e.Manager, e.OllamaURL, api.Options{Token: e.Config.Token, AllowAdmin: e.Config.AllowAdmin, Log: e.Log, StartOllama: e.StartOllama})
	err := srv.Serve(ctx, e.Config.Listen)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "listen" {
		return fmt.Errorf("API on %s: %w (is another VRAM Keeper running? set --listen or listen in the config)", e.Config.Listen, err)
	}
	return err
}

// Serve runs the manager and the API headless until ctx ends.
func Serve(ctx context.Context, env *Env) error {
	stop := env.Start(ctx)
	defer stop()
	fmt.Fprintf(env.Stderr, "vramkeeper: serving on http://%s (Ollama at %s); point clients at OLLAMA_HOST=%s\n",
		env.Config.Listen, env.OllamaURL, env.Config.Listen)
	return env.ServeAPI(ctx)
}

// WindowArgs are the arguments of the `vramkeeper window` child the tray
// starts: the tray's own settings flags, so that the window's Settings tab
// shows what the tray runs with, and the resolved config file and API
// address, so that it edits the same file and talks to this tray.
func WindowArgs(f Flags, configPath, listen string) []string {
	args := []string{"window"}
	str := func(name, v string) {
		if v != "" {
			args = append(args, "--"+name, v)
		}
	}
	num := func(name string, v int) {
		if v > 0 {
			args = append(args, "--"+name, strconv.Itoa(v))
		}
	}
	str("ollama", f.Ollama)
	str("budget", f.Budget)
	str("vram", f.VRAM)
	num("max-loaded", f.MaxLoaded)
	num("ctx", f.Ctx)
	str("config", configPath)
	str("state-dir", f.StateDir)
	str("listen", listen)
	if f.Verbose {
		args = append(args, "-v")
	}
	return args
}

// DialWindow connects the window to the tray's API, waiting up to wait for
// it: the tray opens the window while its API may still be starting.
func (e *Env) DialWindow(ctx context.Context, wait time.Duration) (*api.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		c, err := api.Dial(ctx, e.apiBase(), e.Config.Token)
		if err == nil || !errors.Is(err, api.ErrNotRunning) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the tray's API on %s: %w", e.Config.Listen, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
