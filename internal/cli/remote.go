package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/instance"
	"github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
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
		_, err = c.Verify(ctx, e.Identity())
	}
	if err == nil {
		r := client.NewRemote(c, e.Log)
		if err = r.Refresh(ctx); err == nil {
			e.Log.Info("using the running instance", "addr", addr)
			return r, nil
		}
	}
	if errors.Is(err, client.ErrNotRunning) || errors.Is(err, client.ErrOtherInstance) {
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

// Identity is what an instance for this configuration manages: the
// Ollama and the state folder. A client checks that the instance it
// reaches says the same (client.Verify).
func (e *Env) Identity() wire.Instance {
	return wire.Instance{Ollama: e.OllamaURL.Redacted(), StateDir: e.StateDir}
}

// instance is what GET /keeper/v1/instance says about this process.
func (e *Env) instance() wire.Instance {
	i := e.Identity()
	i.PID, i.Mode, i.Listen, i.OllamaBin = os.Getpid(), e.mode, e.Config.Listen, e.OllamaBin
	if e.NoTray != nil {
		i.NoTray = e.NoTray()
	}
	return i
}

// ServeAPI serves the local API and the Ollama/OpenAI proxy on the
// configured address until ctx ends. The manager must be running. When
// the address is taken, the error says by whom, when it is another VRAM
// Keeper, and what to do.
func (e *Env) ServeAPI(ctx context.Context) error {
	srv := api.New(e.Manager, e.OllamaURL, api.Options{
		Token: e.Config.Token, AllowAdmin: e.Config.AllowAdmin, Log: e.Log,
		StartOllama: e.StartOllama, OpenWindow: e.OpenWindow, Instance: e.instance,
	})
	err := srv.Serve(ctx, e.Config.Listen)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "listen" {
		return &ListenError{Addr: e.Config.Listen, Other: e.whoListens(ctx), Err: err}
	}
	return err
}

// whoListens asks what answers on the configured address (another VRAM
// Keeper says what it is); nil when nothing says.
func (e *Env) whoListens(ctx context.Context) *wire.Instance {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, e.apiBase(), e.Config.Token)
	if err != nil {
		return nil
	}
	i, err := c.Instance(ctx)
	if err != nil {
		return nil
	}
	return &i
}

// ListenError: the local API could not listen on its address.
type ListenError struct {
	Addr string
	// Other is the VRAM Keeper that listens there, when one does.
	Other *wire.Instance
	Err   error
}

func (l *ListenError) Unwrap() error { return l.Err }

func (l *ListenError) Error() string {
	next := nextPort(l.Addr)
	if l.Other != nil {
		return fmt.Sprintf("the local API could not listen on %s: another VRAM Keeper (PID %d, state folder %s, Ollama at %s) uses it; "+
			"stop PID %d, or start this one with --listen %s (or listen in its config)", l.Addr, l.Other.PID, l.Other.StateDir, l.Other.Ollama, l.Other.PID, next)
	}
	cause := "another program answers there"
	if l.Err != nil {
		cause = l.Err.Error()
	}
	return fmt.Sprintf("the local API could not listen on %s (%s); start VRAM Keeper with another address, e.g. --listen %s (or listen in the config)", l.Addr, cause, next)
}

// nextPort is addr one port up, as a suggestion for --listen.
func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p >= 65535 {
		return "127.0.0.1:11436"
	}
	return net.JoinHostPort(host, strconv.Itoa(p+1))
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
// it: the tray opens the window while its API may still be starting. It
// returns what the tray says of itself; an instance that manages another
// Ollama or state folder (it took the address first) is an
// *client.OtherInstanceError, never a window onto its models.
func (e *Env) DialWindow(ctx context.Context, wait time.Duration) (*client.Client, wire.Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		c, err := client.Dial(ctx, e.apiBase(), e.Config.Token)
		if err == nil {
			me, err := c.Verify(ctx, e.Identity())
			if err != nil {
				return nil, me, err
			}
			return c, me, nil
		}
		if !errors.Is(err, client.ErrNotRunning) {
			return nil, wire.Instance{}, err
		}
		select {
		case <-ctx.Done():
			return nil, wire.Instance{}, fmt.Errorf("the tray's API on %s: %w", e.Config.Listen, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// WindowProblem is what the window shows instead of the models when the
// API on its address is another instance's: this tray could not listen
// there, and what to do.
func (e *Env) WindowProblem(oi *client.OtherInstanceError) string {
	l := &ListenError{Addr: e.Config.Listen, Other: oi.Got}
	return "This VRAM Keeper (state folder " + e.StateDir + ") has no window: " + l.Error() + "."
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
