package manager

import (
	"slices"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// Snapshot is a copy of the manager's state for the UI, the API and the CLI.
type Snapshot struct {
	Time time.Time `json:"time"`
	VRAM card.VRAM `json:"vram"`
	// Budget is what our models may use; Used is what they use now; Others
	// is what other programs hold (NVML only); Free is the driver's free
	// figure, or Total − Used when estimated.
	Budget uint64 `json:"budget_bytes"`
	Used   uint64 `json:"used_bytes"`
	Others uint64 `json:"others_bytes"`
	Free   uint64 `json:"free_bytes"`
	// Settings are the ones the manager runs with now.
	Settings Settings `json:"settings"`
	// Tasks and Roles name what BestModelForTask accepts.
	Tasks []string `json:"tasks"`
	Roles []string `json:"roles"`

	OllamaUp   bool   `json:"ollama_up"`
	Version    string `json:"ollama_version,omitempty"`
	RuntimeErr string `json:"ollama_error,omitempty"`
	Paused     bool   `json:"paused"`
	Discovered bool   `json:"discovered"`
	// Loading names the model being loaded now, since LoadingSince.
	Loading      string    `json:"loading,omitempty"`
	LoadingSince time.Time `json:"loading_since,omitzero"`
	// Yielded: the GPU was given back (Yield); loads wait for Restore.
	// YieldedModels are the models a Restore (or, when other programs took
	// the card, their leaving) puts back.
	Yielded       bool     `json:"yielded"`
	YieldedModels []string `json:"yielded_models,omitempty"`
	// Cards are the cards apart, with what other programs hold on each
	// (card.go); empty when no driver answers.
	Cards []CardView `json:"cards,omitempty"`
	// Accounting is the server generation whose memory accounting the
	// estimates follow ("v0.17"); AccountingFrom names the model whose load
	// showed it, when the server's version says nothing (a source build).
	Accounting     string `json:"accounting,omitempty"`
	AccountingFrom string `json:"accounting_inferred_from,omitempty"`

	Models []ModelView `json:"models"`
}

// ModelView is one model as users see it.
type ModelView struct {
	Name          string   `json:"name"`
	Digest        string   `json:"digest"`
	Family        string   `json:"family"`
	Parameters    string   `json:"parameters"`
	ParamsB       float64  `json:"params_billions"`
	Quantization  string   `json:"quantization"`
	Capabilities  []string `json:"capabilities"`
	DiskBytes     uint64   `json:"disk_bytes"`
	NumCtx        int      `json:"context_length"`
	EstimateBytes uint64   `json:"estimate_bytes"`
	// Calibrated: EstimateBytes is the size measured at an earlier load.
	Calibrated  bool               `json:"calibrated"`
	Breakdown   estimate.Breakdown `json:"breakdown"`
	EstimateErr string             `json:"estimate_error,omitempty"`
	Priority    int                `json:"priority"`
	Fits        bool               `json:"fits"`
	State       State              `json:"state"`
	Loaded      bool               `json:"loaded"`
	Pinned      bool               `json:"pinned"`
	LastUsed    time.Time          `json:"last_used,omitzero"`
	Uses        int                `json:"uses"`
	SizeBytes   uint64             `json:"size_bytes,omitempty"`
	InFlight    int                `json:"in_flight,omitempty"`
	Error       string             `json:"error,omitempty"`
	// RetryAt: the model failed to load lately and is not tried again
	// before then (zero when it may be).
	RetryAt time.Time `json:"retry_at,omitzero"`
	// LoadedCtx is the context length it is loaded at (0 when it is not).
	LoadedCtx int `json:"loaded_context_length,omitempty"`
	// ContextAuto: its context is picked at each load to fit the room.
	ContextAuto bool `json:"context_auto,omitempty"`
	// MaxFitCtx is the largest power-of-two context that fits the room
	// left now (0: not even the smallest).
	MaxFitCtx int `json:"max_fit_context_length"`
	// CPUPercent is how much of it Ollama put on the CPU (0-100), when a
	// GPU is there.
	CPUPercent int `json:"cpu_percent,omitempty"`
	// TrainedCtx is the longest context the model was trained for (0:
	// unknown); a longer one is capped to it.
	TrainedCtx int `json:"trained_context_length,omitempty"`
	// WarmPercent is how much of its files is in the page cache (0-100):
	// a load reads that part from RAM.
	WarmPercent int `json:"warm_percent,omitempty"`
	// Card names the card Ollama would put it on, on a machine with
	// several, when it fits on one (the freest); CardCount says over how
	// many it spreads otherwise. Both empty with one card, or once loaded.
	Card      string `json:"card,omitempty"`
	CardCount int    `json:"card_count,omitempty"`
}

// Model returns the view of the named model.
func (s Snapshot) Model(name string) (ModelView, bool) {
	i, ok := slices.BinarySearchFunc(s.Models, name, func(m ModelView, n string) int { return strings.Compare(m.Name, n) })
	if !ok {
		return ModelView{}, false
	}
	return s.Models[i], true
}

// LoadedModels returns the loaded models, most recently used first.
func (s Snapshot) LoadedModels() []ModelView {
	var out []ModelView
	for _, m := range s.Models {
		if m.Loaded {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b ModelView) int { return b.LastUsed.Compare(a.LastUsed) })
	return out
}

// viewOf is md's view: the catalogue's record, the scheduler's slot, and
// whether it fits the budget; its largest context that fits the room is
// the publisher's to add (pubView).
func viewOf(md *model, sl slot, budget uint64, holds int, retryAt time.Time) ModelView {
	v := ModelView{
		Name: md.inst.Name, Digest: md.inst.Digest, Family: md.det.Family,
		Parameters: md.det.ParameterSize, ParamsB: md.paramsB, Quantization: md.det.Quantization,
		Capabilities: slices.Clone(md.det.Capabilities), DiskBytes: md.inst.SizeBytes,
		NumCtx: md.numCtx, EstimateBytes: md.need, Calibrated: md.calibrated, Breakdown: md.est,
		EstimateErr: md.estErr, Priority: md.priority, Fits: md.need > 0 && md.need <= budget,
		State: sl.state, Loaded: sl.state == Loaded, Pinned: md.pinned,
		LastUsed: sl.lastUsed, Uses: sl.uses, InFlight: holds, Error: sl.lastErr, RetryAt: retryAt,
		ContextAuto: md.ctxAuto, CPUPercent: int(100*sl.cpuShare + 0.5),
		WarmPercent: int(100*md.warmth + 0.5), TrainedCtx: md.trained,
	}
	if sl.onCard() {
		v.SizeBytes, v.LoadedCtx = sl.size, sl.loadedCtx
	}
	if v.Error == "" {
		v.Error = errString(md.showErr)
	}
	return v
}
