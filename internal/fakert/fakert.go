// Package fakert is an in-memory model server implementing manager.Runtime
// and manager.GPU. The manager's tests, the trace simulator and the bench
// command share it, so the catalogue they run against (sizes from the
// estimator on real models' shapes) is one and the same.
package fakert

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/estimate"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

const gib = 1 << 30

// Runtime is an in-memory Ollama: a catalogue, a loaded set, counters and
// knobs for failures. It records the peak bytes ever loaded at once so tests
// can assert the budget was never exceeded, even between polls.
type Runtime struct {
	mu      sync.Mutex
	models  map[string]model
	running map[string]serving.Running
	loads   map[string]int
	shows   int
	// listCaps: the list carries capabilities and details, as Ollama's
	// /api/tags does from v0.30; showGate, when set, holds every Show
	// until it is closed.
	listCaps  bool
	showGate  chan struct{}
	peak      uint64
	peakCount int
	down      bool
	loadDelay time.Duration
	loadHook  func(name string) error
	// offers is the registry Pull installs from; pullGate, when set, holds
	// pulls halfway (pull.go).
	offers   map[string]offer
	pullGate chan struct{}
}

type model struct {
	det  serving.Details
	size uint64 // what a load really takes
}

// New returns an empty runtime.
func New() *Runtime {
	return &Runtime{models: map[string]model{}, running: map[string]serving.Running{}, loads: map[string]int{}}
}

// ModelSize is what the manager estimates for a llama-shaped model of
// paramsB billion parameters at 4096 tokens on a GPU: the size the fake
// reports once loaded (times a skew) and the simulator's catalogue size.
func ModelSize(paramsB float64) (uint64, error) {
	b, err := estimate.Estimate(LlamaMeta(paramsB), estimate.Options{NumCtx: 4096, Device: estimate.GPU})
	if err != nil {
		return 0, fmt.Errorf("estimate %.1fB: %w", paramsB, err)
	}
	return b.Total, nil
}

// Add installs a llama-shaped model of about paramsB billion parameters.
// Its real loaded size is the estimator's own GPU figure times skew, so
// tests can make estimates low or high on purpose. nil caps means
// completion only.
func (f *Runtime) Add(name string, paramsB float64, caps []string, skew float64) {
	size, err := ModelSize(paramsB)
	if err != nil {
		panic(fmt.Sprintf("fakert: %s: %v", name, err)) // shapes are built in: a bug
	}
	if caps == nil {
		caps = []string{"completion"}
	}
	fam := strings.SplitN(name, ":", 2)[0]
	f.mu.Lock()
	defer f.mu.Unlock()
	f.models[name] = model{
		det: serving.Details{
			Name: name, Digest: "sha256:" + name, Family: fam, Families: []string{fam},
			ParameterSize: fmt.Sprintf("%.1fB", paramsB), Quantization: "Q4_0",
			Capabilities: caps, Meta: LlamaMeta(paramsB), Files: []string{"/models/blobs/" + name},
		},
		size: uint64(float64(size) * skew),
	}
}

// Remove deletes a model from the catalogue (not from the loaded set).
func (f *Runtime) Remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.models, name)
}

// SetDown makes every call fail as unreachable; going down loses the
// loaded set, as a server restart does.
func (f *Runtime) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	if down {
		f.running = map[string]serving.Running{}
	}
}

// SetLoadDelay makes every load take d.
func (f *Runtime) SetLoadDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loadDelay = d
}

// SetLoadHook runs h (without the lock held) at the start of every load;
// an error from it fails the load.
func (f *Runtime) SetLoadHook(h func(name string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loadHook = h
}

// Peak returns the most bytes and the most models ever loaded at once.
func (f *Runtime) Peak() (bytes uint64, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak, f.peakCount
}

func (f *Runtime) check() error {
	if f.down {
		return fmt.Errorf("dial tcp 127.0.0.1:1: connection refused: %w", manager.ErrUnreachable)
	}
	return nil
}

func (f *Runtime) List(ctx context.Context) ([]serving.Installed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return nil, err
	}
	out := make([]serving.Installed, 0, len(f.models))
	for n, m := range f.models {
		in := serving.Installed{Name: n, Digest: m.det.Digest, SizeBytes: m.size}
		if f.listCaps {
			d := m.det
			in.Capabilities, in.Family, in.Families, in.ParameterSize, in.Quantization = d.Capabilities, d.Family, d.Families, d.ParameterSize, d.Quantization
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ListLikeV030 makes the list carry capabilities and details (Ollama
// v0.30's /api/tags); gate, when not nil, holds every Show until closed.
func (f *Runtime) ListLikeV030(gate chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listCaps, f.showGate = true, gate
}

func (f *Runtime) Show(ctx context.Context, name string) (serving.Details, error) {
	f.mu.Lock()
	gate := f.showGate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return serving.Details{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return serving.Details{}, err
	}
	f.shows++
	m, ok := f.models[name]
	if !ok {
		return serving.Details{}, fmt.Errorf("show %s: %w", name, manager.ErrModelUnknown)
	}
	return m.det, nil
}

func (f *Runtime) Load(ctx context.Context, req serving.LoadRequest) error {
	f.mu.Lock()
	delay, hook := f.loadDelay, f.loadHook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(req.Name); err != nil {
			return err
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	m, ok := f.models[req.Name]
	if !ok {
		return fmt.Errorf("load %s: %w", req.Name, manager.ErrModelUnknown)
	}
	f.loads[req.Name]++
	f.running[req.Name] = serving.Running{Name: req.Name, Digest: m.det.Digest, SizeBytes: m.size, VRAMBytes: m.size, ContextLength: req.NumCtx}
	var sum uint64
	for _, r := range f.running {
		sum += r.VRAMBytes
	}
	f.peak = max(f.peak, sum)
	f.peakCount = max(f.peakCount, len(f.running))
	return nil
}

// Shows counts Show calls.
func (f *Runtime) Shows() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shows
}

// LoadExternal loads a model as another client would, bypassing the manager.
func (f *Runtime) LoadExternal(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.models[name]
	f.running[name] = serving.Running{Name: name, Digest: m.det.Digest, SizeBytes: m.size, VRAMBytes: m.size, ContextLength: 4096}
}

func (f *Runtime) Unload(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	delete(f.running, name)
	return nil
}

func (f *Runtime) Running(ctx context.Context) ([]serving.Running, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return nil, err
	}
	out := make([]serving.Running, 0, len(f.running))
	for _, r := range f.running {
		out = append(out, r)
	}
	return out, nil
}

func (f *Runtime) Version(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "0.17.4", f.check() // the accounting its sizes follow (estimate.TwoEngines)
}

// RunningNames returns the loaded models' names, sorted.
func (f *Runtime) RunningNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.running))
	for n := range f.running {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// LoadCount returns how many times name was loaded.
func (f *Runtime) LoadCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loads[name]
}

// GPU is an NVML-like card whose use is what RT holds plus what other
// programs take.
type GPU struct {
	RT     *Runtime
	Total  uint64
	Others uint64
}

func (g *GPU) Read(ctx context.Context) (card.VRAM, error) {
	g.RT.mu.Lock()
	defer g.RT.mu.Unlock()
	used := g.Others
	for _, r := range g.RT.running {
		used += r.VRAMBytes
	}
	return card.VRAM{Source: card.SourceNVML, Name: "Fake RTX 4060", Total: g.Total, Used: used, Free: g.Total - min(used, g.Total)}, nil
}

// LlamaMeta builds llama-architecture metadata of a real model's shape for
// about paramsB billion parameters, with Q4_0 weights.
func LlamaMeta(paramsB float64) estimate.Model {
	type shape struct{ embd, layers, heads, kv, ffn int }
	shapes := []struct {
		upTo float64
		s    shape
	}{
		{0.8, shape{896, 24, 14, 2, 4864}},
		{1.8, shape{2048, 16, 32, 8, 8192}},
		{4, shape{3072, 28, 24, 8, 8192}},
		{9, shape{4096, 32, 32, 8, 14336}},
		{15, shape{5120, 40, 40, 8, 13824}},
		{35, shape{5120, 64, 40, 8, 27648}},
		{1e9, shape{8192, 80, 64, 8, 28672}},
	}
	var s shape
	for _, c := range shapes {
		if paramsB <= c.upTo {
			s = c.s
			break
		}
	}
	const vocab = 32000
	hd := s.embd / s.heads
	kv := map[string]any{
		"general.architecture":                   "llama",
		"llama.block_count":                      float64(s.layers),
		"llama.context_length":                   float64(131072),
		"llama.embedding_length":                 float64(s.embd),
		"llama.feed_forward_length":              float64(s.ffn),
		"llama.attention.head_count":             float64(s.heads),
		"llama.attention.head_count_kv":          float64(s.kv),
		"llama.attention.layer_norm_rms_epsilon": 1e-5,
		"llama.vocab_size":                       float64(vocab),
	}
	t := func(name, typ string, shape ...uint64) estimate.Tensor {
		return estimate.Tensor{Name: name, Type: typ, Shape: shape}
	}
	e, f, k := uint64(s.embd), uint64(s.ffn), uint64(s.kv*hd)
	ts := []estimate.Tensor{t("token_embd.weight", "Q4_0", e, vocab), t("output_norm.weight", "F32", e), t("output.weight", "Q4_0", e, vocab)}
	for i := range s.layers {
		p := fmt.Sprintf("blk.%d.", i)
		ts = append(ts,
			t(p+"attn_norm.weight", "F32", e), t(p+"attn_q.weight", "Q4_0", e, e), t(p+"attn_k.weight", "Q4_0", e, k),
			t(p+"attn_v.weight", "Q4_0", e, k), t(p+"attn_output.weight", "Q4_0", e, e), t(p+"ffn_norm.weight", "F32", e),
			t(p+"ffn_gate.weight", "Q4_0", e, f), t(p+"ffn_up.weight", "Q4_0", e, f), t(p+"ffn_down.weight", "Q4_0", f, e))
	}
	return estimate.Model{Arch: "llama", KV: kv, Tensors: ts}
}

// SeedModel is one entry of the seed catalogue.
type SeedModel struct {
	Name    string
	ParamsB float64
	Caps    []string
}

// Seed returns 27 models from 0.5B to 70B shaped like a typical user's
// Ollama library; a fresh slice each call.
func Seed() []SeedModel {
	chat := []string{"completion", "tools"}
	code := []string{"completion", "insert", "tools"}
	return []SeedModel{
		{"llama3.2:1b", 1.2, chat}, {"llama3.2:3b", 3.2, chat}, {"llama3.1:8b", 8, chat}, {"llama3.1:70b", 70, chat},
		{"qwen2.5:0.5b", 0.5, chat}, {"qwen2.5:1.5b", 1.5, chat}, {"qwen2.5:3b", 3.1, chat}, {"qwen2.5:7b", 7.6, chat},
		{"qwen2.5-coder:1.5b", 1.5, code}, {"qwen2.5-coder:7b", 7.6, code}, {"qwen2.5-coder:14b", 14.8, code}, {"qwen2.5-coder:32b", 32.8, code},
		{"mistral:7b", 7.2, chat}, {"gemma2:2b", 2.6, []string{"completion"}}, {"gemma2:9b", 9.2, []string{"completion"}}, {"gemma2:27b", 27.2, []string{"completion"}},
		{"phi3:3.8b", 3.8, []string{"completion"}}, {"phi3:14b", 14, []string{"completion"}},
		{"deepseek-r1:1.5b", 1.8, []string{"completion", "thinking"}}, {"deepseek-r1:7b", 7.6, []string{"completion", "thinking"}},
		{"deepseek-r1:14b", 14.8, []string{"completion", "thinking"}}, {"deepseek-r1:32b", 32.8, []string{"completion", "thinking"}},
		{"codellama:7b", 6.7, []string{"completion", "insert"}}, {"codellama:13b", 13, []string{"completion", "insert"}},
		{"nomic-embed-text:latest", 0.14, []string{"embedding"}}, {"mxbai-embed-large:latest", 0.33, []string{"embedding"}},
		{"llava:7b", 7.2, []string{"completion", "vision"}},
	}
}

// SeedCatalogue installs the Seed models.
func SeedCatalogue(f *Runtime) {
	for _, m := range Seed() {
		f.Add(m.Name, m.ParamsB, m.Caps, 1.0)
	}
}

// Synthetic installs n models named and sized like the seed's, each seed
// entry repeated under numbered tags, so a catalogue of any size has the
// seed's mix of capabilities and sizes.
func Synthetic(f *Runtime, n int) {
	seed := Seed()
	for i := range n {
		s := seed[i%len(seed)]
		name := s.Name
		if i >= len(seed) {
			name = fmt.Sprintf("%s-v%d", s.Name, i/len(seed))
		}
		f.Add(name, s.ParamsB, s.Caps, 1.0)
	}
}
