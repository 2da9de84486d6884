// Package serving holds what a model server reports (the models it has
// installed, what it tells of one, the ones it has loaded) and what it is
// asked (a load, a pull). The runtimes that speak to a server
// (manager/ollama) fill these in and the manager decides on them; neither
// needs the other to say what they are.
package serving

import (
	"errors"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// Errors a runtime returns, wrapped, so callers can tell them apart.
var (
	ErrUnreachable  = errors.New("model server unreachable")
	ErrModelUnknown = errors.New("model not found")
)

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

// Listed is what the list alone says of a model, when it says its
// capabilities: enough to rank it; the estimate waits for /api/show.
func (in Installed) Listed() (Details, bool) {
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
