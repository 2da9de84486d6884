package manager

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/score"
)

// state is everything the owner goroutine knows.
type state struct {
	set    Settings
	policy evict.Policy
	models map[string]*model
	calib  map[string]uint64
	// catalog caches /api/show answers by digest across restarts.
	catalog catalog
	usage   map[string]usage // last use of models not (yet) discovered

	vram       VRAM
	vramErr    error
	up         bool
	everUp     bool
	upKnown    bool
	version    string
	runtimeErr string
	paused     bool
	clock      float64 // eviction policy's aging value

	discovered      bool
	discovering     bool
	discoverErr     error
	discoverWaiters []chan error
	polling         bool
	pollWaiters     []chan error

	queue   []*op
	current *op
	replies []func() // sent after the next publish

	// quiet: the closure now running changed nothing a snapshot shows
	// beyond usage; usageDirty: usage changed since the last publish.
	quiet, usageDirty bool

	// gen counts catalogue changes; rankings are cached per task and role
	// until it moves, since they depend on nothing else.
	gen   int
	ranks map[[2]string]ranking

	spawn func(func(context.Context)) // set by Run
}

func newState(p persisted, set Settings, policy evict.Policy) state {
	return state{
		set:    set,
		policy: policy,
		models: map[string]*model{},
		calib:  p.Calibrations,
		usage:  p.Models,
		vram:   VRAM{Source: SourceEstimated},
	}
}

func (s *state) persisted() persisted {
	p := persisted{Models: map[string]usage{}, Calibrations: s.calib}
	for n, u := range s.usage {
		p.Models[n] = u
	}
	for n, md := range s.models {
		if md.uses > 0 || !md.lastUsed.IsZero() {
			p.Models[n] = usage{LastUsed: md.lastUsed, Uses: md.uses}
		}
	}
	return p
}

// budget resolves the configured budget against the card's size.
func (s *state) budget() uint64 { return s.set.Budget.Budget(s.vram.Total) }

// ours is what the models we know as loaded occupy.
func (s *state) ours() uint64 {
	var n uint64
	for _, md := range s.models {
		if md.state == Loaded || md.state == Unloading {
			n += md.size
		}
	}
	return n
}

// need is the bytes a model will take: the measured size of an earlier load
// at the same context length when there is one, the estimate otherwise.
func (s *state) need(md *model) (uint64, bool) {
	if b, ok := s.calib[calibKey(md.inst.Digest, md.numCtx)]; ok {
		return b, true
	}
	return md.est.Total, false
}

// limits are the bounds for the next load.
func (s *state) limits() evict.Limits {
	lim := evict.Limits{Budget: s.budget(), MaxLoaded: s.set.MaxLoaded}
	if s.vram.Source == SourceNVML {
		lim.HasDevice = true
		if s.vram.Free > s.set.SafetyMargin {
			lim.DeviceRoom = s.vram.Free - s.set.SafetyMargin
		}
	}
	return lim
}

// entries are the loaded models as the eviction policy sees them.
func (s *state) entries(now time.Time) []evict.Entry {
	var out []evict.Entry
	for _, md := range s.models {
		if md.state != Loaded {
			continue
		}
		out = append(out, evict.Entry{
			Name: md.inst.Name, Bytes: md.size, LastUsed: md.lastUsed, Uses: md.uses,
			Credit: md.credit, Pinned: md.pinned, Busy: s.busy(md, now),
		})
	}
	return out
}

type ranking struct {
	gen    int
	ranked []score.Ranked
	err    error
}

// busy reports whether requests in flight hold md in place: until they end,
// or until the grace ends when one is set.
func (s *state) busy(md *model, now time.Time) bool {
	return md.inflight > 0 && (s.set.BusyGrace == 0 || now.Sub(md.busySince) < s.set.BusyGrace)
}

// touch records a use of md now.
func (s *state) touch(md *model, now time.Time) {
	s.usageDirty = true
	md.lastUsed = now
	md.uses++
	// The policy sees the previous credit and this use's time: LRFU decays
	// the old count to now, GDSF adds to the clock.
	e := evict.Entry{Name: md.inst.Name, Bytes: md.size, Uses: md.uses, LastUsed: now, Credit: md.credit}
	s.policy.Touch(&e, s.clock)
	md.credit = e.Credit
}

// contextFor is the context length a model is loaded with: its own
// Modelfile num_ctx when set, the configured one otherwise, never above what
// the model was trained for (Ollama caps it the same way).
func (s *state) contextFor(d Details) int {
	n := s.set.NumCtx
	if d.NumCtx > 0 {
		n = d.NumCtx
	}
	if max := trainedContext(d.Meta); max > 0 && n > max {
		n = max
	}
	return n
}

func trainedContext(m estimate.Model) int {
	v, ok := m.KV[m.Arch+".context_length"]
	if !ok {
		return 0
	}
	switch x := v.(type) {
	case float64:
		return int(x)
	case int:
		return x
	case uint32:
		return int(x)
	case uint64:
		return int(x)
	case int64:
		return int(x)
	}
	return 0
}

// device is where the estimator should assume the model lives: with no
// driver and nothing loaded on a GPU, Ollama runs on the CPU.
func (s *state) device() estimate.Device {
	if s.vram.Source == SourceNVML {
		return estimate.GPU
	}
	for _, md := range s.models {
		if md.state == Loaded && md.size > 0 && md.onGPU {
			return estimate.GPU
		}
	}
	return estimate.CPU
}

// evaluate recomputes a model's derived fields after its details or the
// settings change.
func (s *state) evaluate(md *model) {
	s.gen++
	if !md.hasDetails {
		return
	}
	md.paramsB = score.ParseParams(md.det.ParameterSize)
	if md.paramsB == 0 {
		md.paramsB = countParams(md.det.Meta)
	}
	md.priority = score.Priority(md.paramsB)
	md.numCtx = s.contextFor(md.det)
	md.est, md.estErr = estimate.Estimate(md.det.Meta, estimate.Options{NumCtx: md.numCtx, NumParallel: 1, Device: s.device()})
	md.pinned = slices.Contains(s.set.Pinned, md.inst.Name)
}

// countParams counts weights when the server gives no parameter size.
func countParams(m estimate.Model) float64 {
	var n float64
	for _, t := range m.Tensors {
		e := 1.0
		for _, d := range t.Shape {
			e *= float64(d)
		}
		n += e
	}
	return n / 1e9
}

func (s *state) candidates() []score.Candidate {
	var out []score.Candidate
	for _, md := range s.models {
		if !md.hasDetails {
			continue
		}
		out = append(out, score.Candidate{
			Name: md.inst.Name, Family: md.det.Family, Families: md.det.Families,
			ParamsB: md.paramsB, Capabilities: md.det.Capabilities,
		})
	}
	return out
}

// lookup finds a model by name, accepting the ":latest" tag being left off.
func (s *state) lookup(name string) *model {
	if md, ok := s.models[name]; ok {
		return md
	}
	if !strings.Contains(name, ":") {
		return s.models[name+":latest"]
	}
	return nil
}
