package manager

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
	"unsafe"

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

// header is the part of a snapshot outside the model list, comparable so
// that publish can tell whether anything changed.
type header struct {
	vram                         vramKey
	cards                        unsafe.Pointer // replaced whole by readCard
	budget, used, others, free   uint64
	up, paused, discovered       bool
	version, runtimeErr, loading string
	loadingSince                 time.Time
	maxLoaded, numCtx            int
	policy                       string
	margin                       uint64
	busyGrace, loadTimeout       time.Duration
	budgetSet                    string
	pinned                       string
	yielded                      bool
	yieldedModels                int
	contexts                     unsafe.Pointer // replaced whole by Apply
	gpuOnly                      bool
	tasks, roles                 unsafe.Pointer // the tables' maps: Apply replaces them whole
	accounting, accountingFrom   string
}

// viewKey is everything a model's view is made of, comparable.
type viewKey struct {
	name, digest, showErr string
	disk                  uint64
	hasDetails            bool
	derived
	files
	live
	use
	fits    bool
	holds   int
	retryAt time.Time
	maxFit  int
	// card and cardCount: where Ollama would put it, on a machine with
	// several cards (placement).
	card      string
	cardCount int
}

type cachedView struct {
	key  viewKey
	view ModelView
}

// publish stores a new snapshot when anything visible changed since the
// last one; a model's use (last used, count) counts only when withUse, at
// each poll, so that a request on a loaded model costs no snapshot. Changes
// are found by comparing what the snapshot is built from, model by model,
// so nothing needs to flag them; a model's view is rebuilt only when its
// own inputs changed.
func (m *Manager) publish(withUse bool) {
	h, free := m.header()
	changed := m.snap.Load() == nil || m.lastHeader != h
	fresh := len(m.order) != len(m.cat.models) // the set of models changed
	for _, md := range m.cat.models {
		if md.pub == nil {
			fresh = true
		}
		changed = m.review(md, h, free, withUse) || changed
	}
	if fresh {
		m.order = slices.SortedFunc(maps.Values(m.cat.models), func(a, b *model) int { return strings.Compare(a.inst.Name, b.inst.Name) })
		changed = true
	}
	if changed {
		m.storeSnapshot(h)
	}
}

// publishOne is publish after an event that can have changed one model
// alone (a request that found it loaded: its holds): the header and that
// model are compared, not every model, so an agent's repeated request
// costs the same with a thousand models installed as with ten.
func (m *Manager) publishOne(name string) {
	h, free := m.header()
	md := m.cat.models[name]
	if m.snap.Load() == nil || m.lastHeader != h || md == nil || md.pub == nil || len(m.order) != len(m.cat.models) {
		m.publish(false)
		return
	}
	if m.review(md, h, free, false) {
		m.storeSnapshot(h)
	}
}

// review brings md's published view up to date; it reports whether the
// view changed.
func (m *Manager) review(md *model, h header, free uint64, withUse bool) bool {
	name := md.inst.Name
	sl := m.sched.record(name)
	room := free
	if sl.onCard() {
		room += sl.size
	}
	k := viewKey{
		name: name, digest: md.inst.Digest, showErr: errString(md.showErr), disk: md.inst.SizeBytes,
		hasDetails: md.hasDetails, derived: md.derived, files: md.files, live: sl.live,
		fits:  md.need > 0 && md.need <= h.budget,
		holds: m.sched.holds(name), retryAt: m.sched.retryAt(name, md.inst.Digest, md.numCtx), maxFit: maxContext(md.fit(), room),
	}
	if !sl.onCard() {
		k.card, k.cardCount = placement(md.need, m.conn.vram.Cards, h.margin)
	}
	if withUse || md.pub == nil {
		k.use = sl.use
	} else {
		k.use = md.pub.key.use
	}
	if md.pub != nil && md.pub.key == k {
		return false
	}
	md.pub = &cachedView{key: k, view: viewOf(md, sl, k)}
	return true
}

// storeSnapshot publishes a snapshot of h and the models' views.
func (m *Manager) storeSnapshot(h header) {
	m.lastHeader = h
	snap := &Snapshot{
		Time: m.now(), VRAM: m.conn.vram, Budget: h.budget, Used: h.used, Others: h.others, Free: h.free,
		Settings: m.tune.Settings, Tasks: m.tune.Tables.TaskNames(), Roles: m.tune.Tables.RoleNames(),
		OllamaUp: h.up, Version: h.version, RuntimeErr: h.runtimeErr, Paused: h.paused,
		Discovered: h.discovered, Loading: h.loading, LoadingSince: h.loadingSince,
		Yielded: h.yielded, YieldedModels: m.sched.yieldedNames(),
		Cards: cardViews(m.conn.vram, m.conn.oursAtRead), Accounting: h.accounting, AccountingFrom: h.accountingFrom,
		Models: make([]ModelView, len(m.order)),
	}
	snap.Settings.Pinned = slices.Clone(m.tune.Pinned)
	for i, md := range m.order {
		snap.Models[i] = md.pub.view
	}
	m.snap.Store(snap)
}

// header is the snapshot's header now, and the room our models have left
// (what a model's largest context that fits is measured against).
func (m *Manager) header() (header, uint64) {
	st := m.sched.status()
	ours := st.ours
	s, c := m.tune, m.conn
	h := header{
		vram: c.vram.key(), cards: unsafe.Pointer(unsafe.SliceData(c.vram.Cards)), budget: st.budget, used: ours,
		up: c.up, paused: st.paused, discovered: m.cat.listed, version: c.version, runtimeErr: c.err,
		maxLoaded: s.MaxLoaded, numCtx: s.NumCtx, policy: s.Policy, margin: s.SafetyMargin,
		busyGrace: s.BusyGrace, loadTimeout: s.LoadTimeout, budgetSet: s.Budget.String(),
		pinned: strings.Join(s.Pinned, "\x00"), yielded: st.handedBack,
		yieldedModels: st.yielded, contexts: reflect.ValueOf(s.Contexts).UnsafePointer(), gpuOnly: s.GPUOnly,
		tasks: reflect.ValueOf(s.Tables.Tasks).UnsafePointer(), roles: reflect.ValueOf(s.Tables.Roles).UnsafePointer(),
		loading: st.loading, loadingSince: st.loadingSince,
	}
	h.accounting, h.accountingFrom = m.cat.accounting()
	h.others = c.others()
	if c.vram.Measured() {
		h.free = c.vram.Free
	} else if c.vram.Total > h.used {
		h.free = c.vram.Total - h.used
	}
	return h, max(st.room, ours) - ours
}

func viewOf(md *model, sl slot, k viewKey) ModelView {
	v := ModelView{
		Name: md.inst.Name, Digest: md.inst.Digest, Family: md.det.Family,
		Parameters: md.det.ParameterSize, ParamsB: md.paramsB, Quantization: md.det.Quantization,
		Capabilities: slices.Clone(md.det.Capabilities), DiskBytes: md.inst.SizeBytes,
		NumCtx: md.numCtx, EstimateBytes: md.need, Calibrated: md.calibrated, Breakdown: md.est,
		EstimateErr: md.estErr, Priority: md.priority, Fits: k.fits,
		State: sl.state, Loaded: sl.state == Loaded, Pinned: md.pinned,
		LastUsed: sl.lastUsed, Uses: sl.uses, InFlight: k.holds, Error: sl.lastErr, RetryAt: k.retryAt,
		ContextAuto: md.ctxAuto, MaxFitCtx: k.maxFit, CPUPercent: int(100*sl.cpuShare + 0.5),
		WarmPercent: int(100*md.warmth + 0.5), TrainedCtx: md.trained,
	}
	if sl.onCard() {
		v.SizeBytes, v.LoadedCtx = sl.size, sl.loadedCtx
	}
	v.Card, v.CardCount = k.card, k.cardCount
	if v.Error == "" {
		v.Error = k.showErr
	}
	return v
}
