// Package mcp serves VRAM Keeper to agents over the Model Context Protocol,
// with the official Go SDK: eight tools (status, models, best_model, fits,
// load_model, unload_model, give_gpu_back, restore_models), each with a
// JSON Schema for its input, structured output and a one-line summary.
//
// The tools call one keeper.Keeper, so they work the same on the manager
// in this process (`vramkeeper mcp` with no instance running, and the
// API's /mcp) and on a running instance through its API (`vramkeeper mcp`
// beside the tray or serve). Two transports: Streamable HTTP (Handler,
// mounted at /mcp behind the API's guard) and stdio (ServeStdio).
//
// A failure is a tool result with isError and the manager's message
// (unknown model or task, never fits, GPU given back, load timed out),
// never a protocol error; every call has a deadline.
package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vramkeeper/vramkeeper/manager/keeper"
)

// Options configure the server. Zero values take the documented defaults.
type Options struct {
	// Version is what the server tells clients it is (default "dev").
	Version string
	// LoadTimeout bounds a call that may load or unload (best_model,
	// load_model, unload_model, give_gpu_back, restore_models): a swap of
	// large models from a slow disk takes minutes (default 10 minutes, as
	// a proxied request's wait).
	LoadTimeout time.Duration
	// ReadTimeout bounds the others, which read the manager's state
	// (default 30 s).
	ReadTimeout time.Duration
	// ProgressEvery is how often a slow call tells a client that asked
	// for progress how long it has been loading (default 5 s), so that
	// clients that reset their timeout on progress keep waiting.
	ProgressEvery time.Duration
	// Log receives the SDK's warnings and errors (a broken transport);
	// its info lines (every session, which over HTTP is every request)
	// are dropped. nil discards all.
	Log *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Log != nil {
		if _, done := o.Log.Handler().(atLeast); !done {
			o.Log = slog.New(atLeast{o.Log.Handler(), slog.LevelWarn})
		}
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.LoadTimeout <= 0 {
		o.LoadTimeout = 10 * time.Minute
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 5 * time.Second
	}
}

// New returns an MCP server with VRAM Keeper's tools on k.
func New(k keeper.Keeper, opt Options) *sdk.Server {
	opt.setDefaults()
	s := sdk.NewServer(&sdk.Implementation{Name: "vramkeeper", Title: "VRAM Keeper", Version: opt.Version},
		&sdk.ServerOptions{
			Instructions: "VRAM Keeper keeps the local Ollama's models within a VRAM budget on one GPU. " +
				"Before a GPU job, read status (free VRAM, what is loaded) or ask fits; to run a model, ask best_model " +
				"for a task (it loads the best model that fits, evicting others as needed) and send requests to the model it names.",
			Logger: opt.Log,
		})
	addTools(s, tools{k: k, opt: opt})
	return s
}

// Handler serves the server over Streamable HTTP. It is stateless: each
// request is a session of its own, so nothing outlives a request and any
// number of clients may call at once. Mount it behind the API's guard,
// which applies the token, the loopback Host rule and the origin rule to
// it as to the rest of the API (so the SDK's own Host check is off).
func Handler(k keeper.Keeper, opt Options) http.Handler {
	opt.setDefaults()
	s := New(k, opt)
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{
		Stateless:                  true,
		DisableLocalhostProtection: true,
		Logger:                     opt.Log,
	})
}

// ServeStdio serves one client over in and out (newline-delimited
// JSON-RPC) until it closes in or ctx ends. Nothing else may write to out.
func ServeStdio(ctx context.Context, k keeper.Keeper, in io.Reader, out io.Writer, opt Options) error {
	t := &sdk.IOTransport{Reader: io.NopCloser(in), Writer: nopCloser{out}}
	err := New(k, opt).Run(ctx, t)
	if err == nil || errors.Is(err, io.EOF) || ctx.Err() != nil {
		return nil // the client left, or we were told to stop
	}
	return fmt.Errorf("mcp over stdio: %w", err)
}

// atLeast passes on records of level min and above.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}
func (h atLeast) WithAttrs(a []slog.Attr) slog.Handler { return atLeast{h.Handler.WithAttrs(a), h.min} }
func (h atLeast) WithGroup(g string) slog.Handler      { return atLeast{h.Handler.WithGroup(g), h.min} }

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
