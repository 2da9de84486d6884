package manager

import (
	"context"

	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// Runtime is what the manager needs from a model server. manager/ollama
// implements it over Ollama's HTTP API; tests use in-memory fakes.
type Runtime interface {
	// List returns every installed model without loading any.
	List(ctx context.Context) ([]serving.Installed, error)
	// Show returns a model's metadata (verbose: full arrays and tensors).
	Show(ctx context.Context, name string) (serving.Details, error)
	// Load loads a model and keeps it loaded until Unload (keep_alive -1).
	Load(ctx context.Context, req serving.LoadRequest) error
	// Unload asks the server to unload a model and returns once it is gone
	// from Running.
	Unload(ctx context.Context, name string) error
	// Running returns the models the server has loaded now.
	Running(ctx context.Context) ([]serving.Running, error)
	// Version returns the server's version; it doubles as a liveness probe.
	Version(ctx context.Context) (string, error)
	// Pull downloads a model from its registry, calling progress (never
	// nil) with each update; cancelling ctx stops it, and a model pulled
	// only in part is not installed.
	Pull(ctx context.Context, req serving.PullRequest, progress func(serving.PullProgress)) error
}

// Errors a Runtime returns, wrapped, so callers can tell them apart; the
// manager returns them too (a name no server lists, a server down).
var (
	ErrUnreachable  = serving.ErrUnreachable
	ErrModelUnknown = serving.ErrModelUnknown
)

// GPU reads the card's memory. manager/gpu implements it with NVML and a
// configured fallback.
type GPU interface {
	Read(ctx context.Context) (card.VRAM, error)
}
