package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/instance"
	"github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/keeper"
)

// apiBase is the URL of the local API for the configured listen address.
func (e *Env) apiBase() string { return "http://" + e.Config.Listen }

// remote returns the API of the instance at addr (the tray app or serve),
// so the CLI and the tray share one state. The error wraps
// client.ErrNotRunning when none answers there; any other error is an
// instance that answers but refuses this command.
func (e *Env) remote(ctx context.Context, addr string) (keeper.Keeper, error) {
	c, err := client.Dial(ctx, "http://"+addr, e.Config.Token)
	if err == nil {
		r := client.NewRemote(c, e.Log)
		if err = r.Refresh(ctx); err == nil {
			e.Log.Info("using the running instance", "addr", addr)
			return r, nil
		}
	}
	if errors.Is(err, client.ErrNotRunning) {
		return nil, err
	}
	hint := ""
	switch {
	case errors.Is(err, client.ErrUnauthorized):
		hint = ": its token was refused (set token in the config to the instance's)"
	case errors.Is(err, client.ErrVersionMismatch):
		hint = ": it is another vramkeeper release (use the same one, or stop it first)"
	}
	return nil, fmt.Errorf("the running VRAM Keeper at http://%s refused this command%s: %w", addr, hint, err)
}

// ServeAPI serves the local API and the Ollama/OpenAI proxy on the
// configured address until ctx ends. The manager must be running.
func (e *Env) ServeAPI(ctx context.Context) error {
	srv := api.New(e.Manager, e.OllamaURL, api.Options{
		Token: e.Config.Token, AllowAdmin: e.Config.AllowAdmin, Log: e.Log,
		StartOllama: e.StartOllama, OpenWindow: e.OpenWindow,
	})
	err := srv.Serve(ctx, e.Config.Listen)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "listen" {
		return fmt.Errorf("API on %s: %w (is another VRAM Keeper running? set --listen or listen in the config)", e.Config.Listen, err)
	}
	return err
}

// Serve runs the manager and the API headless until ctx ends. Another
// instance on the same state folder makes it exit at once
// (ExitAnotherInstance), naming that instance.
func Serve(ctx context.Context, env *Env) error {
	if err := env.Own("serve"); err != nil {
		var held *instance.HeldError
		if errors.As(err, &held) {
			return fmt.Errorf("%w; stop it first, or give this one its own --state-dir (and --listen) to manage another Ollama", err)
		}
		return err
	}
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
func (e *Env) DialWindow(ctx context.Context, wait time.Duration) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		c, err := client.Dial(ctx, e.apiBase(), e.Config.Token)
		if err == nil || !errors.Is(err, client.ErrNotRunning) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the tray's API on %s: %w", e.Config.Listen, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// OpenRunningWindow asks the instance that holds the state folder to open
// its window (a second tray started on the same folder).
func (e *Env) OpenRunningWindow(ctx context.Context, held *instance.HeldError) error {
	if held.Holder.API == "" {
		return fmt.Errorf("it has no API to ask (%s)", held.Holder.Mode)
	}
	c, err := client.Dial(ctx, "http://"+held.Holder.API, e.Config.Token)
	if err != nil {
		return err
	}
	return c.OpenWindow(ctx)
}
