package cli

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vramkeeper/vramkeeper/manager/api"
)

// apiBase is the URL of the local API for the configured listen address.
func (e *Env) apiBase() string { return "http://" + e.Config.Listen }

// remote returns the API of a running instance (the tray app or serve), so
// the CLI and the tray share one state; false when none answers.
func (e *Env) remote(ctx context.Context) (Keeper, bool) {
	c, err := api.Dial(ctx, e.apiBase(), e.Config.Token)
	if err != nil {
		if !errors.Is(err, api.ErrNotRunning) {
			e.Log.Warn("running instance not usable; working in-process", "addr", e.Config.Listen, "err", err)
		}
		return nil, false
	}
	e.Log.Info("using the running instance", "addr", e.Config.Listen)
	return c, true
}

// ServeAPI serves the local API and the Ollama/OpenAI proxy on the
// configured address until ctx ends. The manager must be running.
func (e *Env) ServeAPI(ctx context.Context) error {
	srv := api.New(e.Manager, e.OllamaURL, api.Options{Token: e.Config.Token, Log: e.Log})
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
