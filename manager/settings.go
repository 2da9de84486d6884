package manager

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/prefetch"
	"github.com/vramkeeper/vramkeeper/manager/score"
)

// ContextAuto as a model's context length picks the largest power of two
// up to its trained length that fits the room when it is loaded.
const ContextAuto = config.ContextAuto

// NoModelLimit as MaxLoaded loads as many models as the budget holds.
const NoModelLimit = config.NoModelLimit

// Settings are what a user may change while the manager runs. They live in
// the owner goroutine only; everyone else reads them from
// Snapshot().Settings and changes them through Apply.
type Settings struct {
	// Budget is the bytes our models may use together, absolute or a
	// percentage of the card; zero means total − 1 GiB.
	Budget config.Size `json:"budget"`
	// MaxLoaded bounds how many models are loaded at once: default 2;
	// NoModelLimit leaves the budget as the only limit.
	MaxLoaded int      `json:"max_loaded"`
	NumCtx    int      `json:"context_length"` // default 4096 (Ollama's default on cards under 23 GiB)
	Pinned    []string `json:"pinned"`
	Policy    string   `json:"policy"` // evict.ByName; "" is the default (LRFU)
	// SafetyMargin is kept free on the card beyond the budget's own slack,
	// because the driver's free figure moves while a model loads.
	SafetyMargin uint64 `json:"safety_margin_bytes"` // default 256 MiB
	// BusyGrace bounds how long a model with requests in flight holds off
	// an eviction; 0 waits until the requests end.
	BusyGrace time.Duration `json:"busy_grace_ns"`
	// LoadTimeout is how long a load may take before it is given up; 0
	// lets it grow with the model's bytes (see loadDeadline).
	LoadTimeout time.Duration `json:"load_timeout_ns"`
	// Contexts are per-model context lengths by model name; ContextAuto
	// picks the largest that fits the room when the model is loaded.
	Contexts map[string]int `json:"contexts,omitempty"`
	// GPUOnly: a model that Ollama puts partly on the CPU is not kept; a
	// smaller context is tried, then (BestModelForTask) the next model.
	GPUOnly bool `json:"gpu_only"`
	// NoPrefetch turns off reading the predicted next models' files into
	// the page cache while the manager is idle (off for a remote Ollama).
	NoPrefetch bool `json:"no_prefetch"`
	// PrefetchMargin is the available memory prefetching leaves alone
	// (default 2 GiB).
	PrefetchMargin uint64 `json:"prefetch_margin_bytes"`
	// Tables are the task and role tables (score.Defaults() when nil); the
	// snapshot lists their names in Tasks and Roles.
	Tables score.Tables `json:"-"`
}

// withDefaults fills the zero values and checks the rest; the policy it
// names is returned resolved.
func (s Settings) withDefaults() (Settings, evict.Policy, error) {
	var errs []error
	if s.MaxLoaded < NoModelLimit {
		errs = append(errs, fmt.Errorf("max loaded: %d is negative", s.MaxLoaded))
	}
	if s.NumCtx < 0 {
		errs = append(errs, fmt.Errorf("context length: %d is negative", s.NumCtx))
	}
	if s.BusyGrace < 0 {
		errs = append(errs, fmt.Errorf("busy grace: %s is negative", s.BusyGrace))
	}
	if s.LoadTimeout < 0 {
		errs = append(errs, fmt.Errorf("load timeout: %s is negative", s.LoadTimeout))
	}
	p, err := evict.ByName(s.Policy)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return s, nil, fmt.Errorf("settings: %w", err)
	}
	if s.MaxLoaded == 0 {
		s.MaxLoaded = 2
	}
	if s.NumCtx == 0 {
		s.NumCtx = 4096
	}
	s.Policy = p.Name()
	if s.PrefetchMargin == 0 {
		s.PrefetchMargin = prefetch.DefaultMargin
	}
	if s.SafetyMargin == 0 {
		s.SafetyMargin = 256 * mib
	}
	if s.Tables.Tasks == nil {
		s.Tables = score.Defaults()
	}
	for name, n := range s.Contexts {
		if n < 1 && n != ContextAuto {
			return s, nil, fmt.Errorf("settings: context length of %s: %d is not a number of tokens or auto", name, n)
		}
	}
	s.Pinned = slices.Clone(s.Pinned)
	s.Contexts = maps.Clone(s.Contexts)
	return s, p, nil
}
