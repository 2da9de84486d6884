package manager

import (
	"context"
	"errors"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// Runtime is what the manager needs from a model server. manager/ollama
// implements it over Ollama's HTTP API; tests use in-memory fakes.
type Runtime interface {
	// List returns every installed model without loading any.
	List(ctx context.Context) ([]Installed, error)
	// Show returns a model's metadata (verbose: full arrays and tensors).
	Show(ctx context.Context, name string) (Details, error)
	// Load loads a model and keeps it loaded until Unload (keep_alive -1).
	Load(ctx context.Context, req LoadRequest) error
	// Unload asks the server to unload a model and returns once it is gone
	// from Running.
	Unload(ctx context.Context, name string) error
	// Running returns the models the server has loaded now.
	Running(ctx context.Context) ([]Running, error)
	// Version returns the server's version; it doubles as a liveness probe.
	Version(ctx context.Context) (string, error)
	// Pull downloads a model from its registry, calling progress (never
	// nil) with each update; cancelling ctx stops it, and a model pulled
	// only in part is not installed.
	Pull(ctx context.Context, req PullRequest, progress func(PullProgress)) error
}

// PullRequest is one download of a model.
type PullRequest struct {
	// Name is the model as its registry names it: "llama3.2:3b",
	// "hf.co/user/repo:Q4_K_M", "registry.local:5000/team/model:tag".
	Name string `json:"model"`
	// Insecure allows a registry over plain HTTP (a local one).
	Insecure bool `json:"insecure,omitempty"`
}

// PullProgress is one update of a pull, as Ollama's /api/pull streams it:
// a status ("pulling manifest", "pulling <digest>", "verifying sha256
// digest", "writing manifest", "success") and, for a file being
// downloaded, its digest, size and the bytes done.
type PullProgress struct {
	Status    string `json:"status"`
	Digest    string `json:"digest,omitempty"`
	Total     uint64 `json:"total,omitempty"`
	Completed uint64 `json:"completed,omitempty"`
}

// Errors a Runtime returns, wrapped, so callers can tell them apart.
var (
	ErrUnreachable  = errors.New("model server unreachable")
	ErrModelUnknown = errors.New("model not found")
)

// Installed is one entry of the server's model list.
type Installed struct {
	Name       string
	Digest     string
	SizeBytes  uint64 // file size on disk
	ModifiedAt time.Time
	// Capabilities and ContextLength come with the list from Ollama v0.30 on
	// (/api/tags capabilities, details.context_length), so discovery can
	// skip /api/show for them; nil and 0 when the server does not send them.
	Capabilities  []string
	ContextLength int
	// What every version lists of the model (details): enough to rank it
	// before /api/show is read.
	Family        string
	Families      []string
	ParameterSize string
	Quantization  string
}

// listed is what the list alone says of a model, when it says its
// capabilities: enough to rank it; the estimate waits for /api/show.
func (in Installed) listed() (Details, bool) {
	if in.Capabilities == nil {
		return Details{}, false
	}
	return Details{Name: in.Name, Digest: in.Digest, Family: in.Family, Families: in.Families,
		ParameterSize: in.ParameterSize, Quantization: in.Quantization, Capabilities: in.Capabilities}, true
}

// Details is what the server tells about one model without loading it.
type Details struct {
	Name          string
	Digest        string
	Family        string
	Families      []string
	Format        string
	ParameterSize string // as the server prints it, e.g. "7.6B"
	Quantization  string // e.g. "Q4_K_M"
	Capabilities  []string
	// NumCtx is the model's own num_ctx parameter (Modelfile), 0 if unset.
	NumCtx int
	Meta   estimate.Model
	// Files are the weight files the server reads to load it (the
	// Modelfile's FROM paths), for prefetching; none when unknown.
	Files []string
}

// LoadRequest is one load.
type LoadRequest struct {
	Name      string
	NumCtx    int
	Embedding bool // embedding-only models load through the embed endpoint
}

// Running is a model the server has loaded.
type Running struct {
	Name          string
	Digest        string
	SizeBytes     uint64 // /api/ps size
	VRAMBytes     uint64 // /api/ps size_vram (0 on CPU)
	ContextLength int
	ExpiresAt     time.Time
	// Loading: the server lists the model while it is still loading it
	// (v0.30 on), sized as its file until its buffers are known.
	Loading bool
}

// GPU reads the card's memory. manager/gpu implements it with NVML and a
// configured fallback.
type GPU interface {
	Read(ctx context.Context) (VRAM, error)
}

// VRAM is one reading of the card (all devices summed).
type VRAM struct {
	// Source names the driver that answered ("nvml", "amdgpu", "xe",
	// "i915", "dxgi", joined with "+" when several did), "estimated" when
	// none did; SourceLabel says it in words.
	Source string `json:"source"`
	Name   string `json:"name,omitempty"` // device name(s)
	Total  uint64 `json:"total_bytes"`
	// Used and Free are the driver's numbers; with Source "estimated" they
	// are zero and the manager derives use from the server's sizes.
	Used uint64 `json:"used_bytes"`
	Free uint64 `json:"free_bytes"`
	// Ollama is what Ollama's processes hold according to the driver
	// (CUDA context and pools included); 0 when the driver cannot tell.
	Ollama uint64 `json:"ollama_bytes,omitempty"`
	// Note says why the source is what it is (e.g. "NVML: driver not found").
	Note string `json:"note,omitempty"`
	// Cards are the readings of each card apart (card.go); the sums above
	// are over the ones Ollama uses.
	Cards []Card `json:"cards,omitempty"`
}
