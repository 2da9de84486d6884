package manager

import (
	"fmt"
	"maps"
	"reflect"
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

// changes is what changed since the last snapshot: a version bumped on
// every change a snapshot shows, and the models whose views it touched.
// Whoever changes state reports it where it does: the catalogue, the
// scheduler (Effects.Changed), the owner for the settings, the connection
// and the files. A nil *changes records nothing (a catalogue in a test).
type changes struct {
	version uint64
	models  map[string]struct{}
	// all: every view (the settings, the device, the room changed);
	// members: models were added or removed, so the order is redone.
	all, members bool
}

// header records a change outside the model list.
func (c *changes) header() {
	if c != nil {
		c.version++
	}
}

// model records a change of name's view.
func (c *changes) model(name string) {
	if c == nil {
		return
	}
	c.version++
	if c.models == nil {
		c.models = map[string]struct{}{}
	}
	c.models[name] = struct{}{}
}

// everyModel records a change of every view.
func (c *changes) everyModel() {
	if c != nil {
		c.version++
		c.all = true
	}
}

// membership records models added or removed.
func (c *changes) membership() {
	if c != nil {
		c.version++
		c.members = true
	}
}

// published is what the last snapshot was made at.
type published struct {
	version uint64
	// budget and room are what every view is measured against (whether a
	// model fits, the largest context that fits): when they move, every
	// view is redone.
	budget, room uint64
}

// publish stores a new snapshot when anything it shows changed since the
// last one: the version tells, and only the views of the models reported
// changed are rebuilt. A model's use (last used, count) shows only when
// withUse, at each poll, so that a request on a loaded model costs no
// snapshot.
func (m *Manager) publish(withUse bool) {
	if withUse {
		for name := range m.used {
			m.changed.model(name)
		}
		clear(m.used)
		m.retryEnded()
	}
	st := m.sched.status()
	room := max(st.room, st.ours) - st.ours
	first := m.snap.Load() == nil
	if first || st.budget != m.pub.budget || room != m.pub.room {
		m.changed.everyModel()
	}
	if m.changed.version == m.pub.version {
		m.verifySnapshot(withUse)
		return
	}
	ch := &m.changed
	if ch.all {
		for _, md := range m.cat.models {
			m.review(md, st.budget, room)
		}
	} else {
		for name := range ch.models {
			if md := m.cat.models[name]; md != nil {
				m.review(md, st.budget, room)
			}
		}
	}
	if first || ch.members {
		m.order = slices.SortedFunc(maps.Values(m.cat.models), func(a, b *model) int { return strings.Compare(a.inst.Name, b.inst.Name) })
		for _, md := range m.order {
			if md.pub == nil {
				m.review(md, st.budget, room)
			}
		}
	}
	m.storeSnapshot(st)
	m.pub = published{version: ch.version, budget: st.budget, room: room}
	clear(ch.models)
	ch.all, ch.members = false, false
	m.verifySnapshot(withUse)
}

// review rebuilds md's published view.
func (m *Manager) review(md *model, budget, free uint64) {
	name := md.inst.Name
	sl := m.sched.record(name)
	room := free
	if sl.onCard() {
		room += sl.size
	}
	v := viewOf(md, sl, budget, room, m.sched.holds(name), m.sched.retryAt(name, md.inst.Digest, md.numCtx))
	m.place(&v, md, sl)
	if !v.RetryAt.IsZero() {
		m.retrying[name] = v.RetryAt
	} else {
		delete(m.retrying, name)
	}
	md.pub = &v
}

// retryEnded marks the views of models whose backoff has ended since, so
// their retry time leaves the snapshot at the next poll.
func (m *Manager) retryEnded() {
	now := m.now()
	for name, at := range m.retrying {
		if !now.Before(at) {
			m.changed.model(name)
			delete(m.retrying, name)
		}
	}
}

// storeSnapshot publishes a snapshot of the settings, the card, the
// scheduler's state st and the models' views.
func (m *Manager) storeSnapshot(st status) {
	m.snap.Store(m.snapshot(st, func(md *model) ModelView { return *md.pub }))
}

// snapshot builds a snapshot with each model's view as view gives it.
func (m *Manager) snapshot(st status, view func(*model) ModelView) *Snapshot {
	c := m.conn
	snap := &Snapshot{
		Time: m.now(), VRAM: c.vram, Budget: st.budget, Used: st.ours, Others: c.others(),
		Settings: m.tune.Settings, Tasks: m.tune.Tables.TaskNames(), Roles: m.tune.Tables.RoleNames(),
		OllamaUp: c.up, Version: c.version, RuntimeErr: c.err, Paused: st.paused,
		Discovered: m.cat.listed, Loading: st.loading, LoadingSince: st.loadingSince,
		Yielded: st.handedBack, YieldedModels: m.sched.yieldedNames(),
		Cards:  cardViews(c.vram, c.oursAtRead),
		Models: make([]ModelView, len(m.order)),
	}
	snap.Accounting, snap.AccountingFrom = m.cat.accounting()
	if c.vram.Measured() {
		snap.Free = c.vram.Free
	} else if c.vram.Total > st.ours {
		snap.Free = c.vram.Total - st.ours
	}
	snap.Settings.Pinned = slices.Clone(m.tune.Pinned)
	for i, md := range m.order {
		snap.Models[i] = view(md)
	}
	return snap
}

// verifySnapshot, in tests (VerifySnapshots), checks that the snapshot
// kept up to date by the version equals one built from scratch now: a
// change nobody reported shows as a difference. Use and retry times show
// only at a poll (withUse), so they are compared only then.
func (m *Manager) verifySnapshot(withUse bool) {
	if !m.verify.Load() || m.verifyErr.Load() != nil {
		return
	}
	st := m.sched.status()
	room := max(st.room, st.ours) - st.ours
	fresh := m.snapshot(st, func(md *model) ModelView {
		name := md.inst.Name
		sl := m.sched.record(name)
		r := room
		if sl.onCard() {
			r += sl.size
		}
		v := viewOf(md, sl, st.budget, r, m.sched.holds(name), m.sched.retryAt(name, md.inst.Digest, md.numCtx))
		m.place(&v, md, sl)
		return v
	})
	got := *m.snap.Load()
	got.Models = slices.Clone(got.Models)
	if len(got.Models) != len(m.cat.models) {
		err := fmt.Errorf("snapshot lists %d models, the catalogue %d", len(got.Models), len(m.cat.models))
		m.verifyErr.Store(&err)
		return
	}
	got.Time, fresh.Time = time.Time{}, time.Time{}
	if !withUse {
		for _, ms := range [][]ModelView{got.Models, fresh.Models} {
			for i := range ms {
				ms[i].LastUsed, ms[i].Uses, ms[i].RetryAt = time.Time{}, 0, time.Time{}
			}
		}
	}
	if !reflect.DeepEqual(got, *fresh) {
		err := fmt.Errorf("the published snapshot differs from one built now:\n%+v\n%+v", got, *fresh)
		m.verifyErr.Store(&err)
	}
}

func viewOf(md *model, sl slot, budget, room uint64, holds int, retryAt time.Time) ModelView {
	v := ModelView{
		Name: md.inst.Name, Digest: md.inst.Digest, Family: md.det.Family,
		Parameters: md.det.ParameterSize, ParamsB: md.paramsB, Quantization: md.det.Quantization,
		Capabilities: slices.Clone(md.det.Capabilities), DiskBytes: md.inst.SizeBytes,
		NumCtx: md.numCtx, EstimateBytes: md.need, Calibrated: md.calibrated, Breakdown: md.est,
		EstimateErr: md.estErr, Priority: md.priority, Fits: md.need > 0 && md.need <= budget,
		State: sl.state, Loaded: sl.state == Loaded, Pinned: md.pinned,
		LastUsed: sl.lastUsed, Uses: sl.uses, InFlight: holds, Error: sl.lastErr, RetryAt: retryAt,
		ContextAuto: md.ctxAuto, MaxFitCtx: maxContext(md.fit(), room), CPUPercent: int(100*sl.cpuShare + 0.5),
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

// place says where Ollama would put a model not on the card yet, on a
// machine with several cards (placement).
func (m *Manager) place(v *ModelView, md *model, sl slot) {
	if !sl.onCard() {
		v.Card, v.CardCount = placement(md.need, m.conn.vram.Cards, m.tune.SafetyMargin)
	}
}
