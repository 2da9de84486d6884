package manager

import (
	"slices"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// Snapshot is a copy of the manager's state for the UI, the API and the CLI.
type Snapshot struct {
	Time time.Time `json:"time"`
	VRAM VRAM      `json:"vram"`
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
	Loading    string `json:"loading,omitempty"`

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

func (m *Manager) publish() {
	s := &m.st
	snap := &Snapshot{
		Time:       m.now(),
		VRAM:       s.vram,
		Budget:     s.budget(),
		Used:       s.ours(),
		Settings:   s.set,
		Tasks:      s.set.Tables.TaskNames(),
		Roles:      s.set.Tables.RoleNames(),
		OllamaUp:   s.up,
		Version:    s.version,
		RuntimeErr: s.runtimeErr,
		Paused:     s.paused,
		Discovered: s.discovered,
	}
	snap.Settings.Pinned = slices.Clone(s.set.Pinned) // SetPinned edits s.set's in place
	if s.vram.Source == SourceNVML {
		snap.Free = s.vram.Free
		// Other programs: what the driver counts beyond Ollama's processes
		// when it lists them (the CUDA context is Ollama's, not theirs),
		// beyond our models' reported sizes otherwise.
		ollama := max(s.vram.Ollama, snap.Used)
		if s.vram.Used > ollama {
			snap.Others = s.vram.Used - ollama
		}
	} else if s.vram.Total > snap.Used {
		snap.Free = s.vram.Total - snap.Used
	}
	if s.current != nil && s.current.kind == opLoad {
		snap.Loading = s.current.name
	}
	for _, md := range s.models {
		need, calibrated := s.need(md)
		v := ModelView{
			Name: md.inst.Name, Digest: md.inst.Digest, Family: md.det.Family,
			Parameters: md.det.ParameterSize, ParamsB: md.paramsB, Quantization: md.det.Quantization,
			Capabilities: slices.Clone(md.det.Capabilities), DiskBytes: md.inst.SizeBytes,
			NumCtx: md.numCtx, EstimateBytes: need, Calibrated: calibrated, Breakdown: md.est,
			EstimateErr: errString(md.estErr), Priority: md.priority,
			Fits:  need > 0 && need <= snap.Budget,
			State: md.state, Loaded: md.state == Loaded, Pinned: md.pinned,
			LastUsed: md.lastUsed, Uses: md.uses, InFlight: md.inflight, Error: md.lastErr,
		}
		if md.state == Loaded || md.state == Unloading {
			v.SizeBytes = md.size
		}
		if md.showErr != nil && v.Error == "" {
			v.Error = md.showErr.Error()
		}
		snap.Models = append(snap.Models, v)
	}
	slices.SortFunc(snap.Models, func(a, b ModelView) int { return strings.Compare(a.Name, b.Name) })
	m.snap.Store(snap)
}
