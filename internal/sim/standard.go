package sim

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/vramkeeper/vramkeeper/internal/fakert"
	"github.com/vramkeeper/vramkeeper/manager/estimate"
	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/predict"
	"github.com/vramkeeper/vramkeeper/manager/score"
)

const (
	gib = 1 << 30
	mib = 1 << 20
	// CardBytes and BudgetBytes are the seed's 8 GiB card and the
	// manager's default budget on it (total − 1 GiB).
	CardBytes   = 8 * gib
	BudgetBytes = 7 * gib
	// ollamaMinimum is what Ollama keeps free on a GPU (ml/device.go
	// MinimumMemory, 457 MiB): its own room is the card less that, not our
	// budget.
	ollamaMinimum = 457 * mib
	// ollamaKeepAlive is Ollama's default keep_alive.
	ollamaKeepAlive = 5 * time.Minute
)

// Setup is the standard experiment: the seed catalogue, its traces and the
// policies compared.
type Setup struct {
	Catalogue Catalogue
	// Eligible are the models that fit the budget alone, largest last.
	Eligible []string
	Traces   []Trace
	// Agents documents how the bursty trace's agents map tasks to models.
	Agents []AgentMix
	Limits evict.Limits // the manager's: budget and max loaded
	// Embedding are the embedding models, which a llama-swap user would put
	// in a group of their own.
	Embedding []string
}

// AgentMix is one agent of the bursty trace: task/role pairs resolved to
// models through the manager's scoring.
type AgentMix struct {
	Name  string
	Tasks []TaskShare
}

// TaskShare is one task of an agent and the model it resolves to.
type TaskShare struct {
	Task, Role, Model string
	Weight            float64
}

// Standard builds the seed experiment with n requests per trace. Sizes are
// the manager's own estimates of llama-shaped models (fakert.ModelSize),
// the numbers its plans use; MaxLoaded is the manager's default of 2.
func Standard(n int, seed uint64) (Setup, error) {
	s := Setup{Catalogue: Catalogue{}, Limits: evict.Limits{Budget: BudgetBytes, MaxLoaded: 2}}
	var cands []score.Candidate
	for _, m := range fakert.Seed() {
		b, err := fakert.ModelSize(m.ParamsB)
		if err != nil {
			return s, fmt.Errorf("sim: catalogue: %w", err)
		}
		fb, err := fileBytes(fakert.LlamaMeta(m.ParamsB))
		if err != nil {
			return s, fmt.Errorf("sim: catalogue: %s: %w", m.Name, err)
		}
		s.Catalogue[m.Name] = Model{Name: m.Name, Bytes: b, FileBytes: fb}
		if slices.Contains(m.Caps, "embedding") {
			s.Embedding = append(s.Embedding, m.Name)
		}
		if b <= BudgetBytes {
			s.Eligible = append(s.Eligible, m.Name)
		}
		cands = append(cands, score.Candidate{Name: m.Name, Family: family(m.Name), Families: []string{family(m.Name)},
			ParamsB: m.ParamsB, Capabilities: m.Caps})
	}
	slices.SortStableFunc(s.Eligible, func(a, b string) int {
		return cmp.Compare(s.Catalogue[a].Bytes, s.Catalogue[b].Bytes)
	})

	// Zipf: popularity in a fixed shuffled order, so big and small models
	// are both among the favourites.
	pop := slices.Clone(s.Eligible)
	shuffle(pop, seed)
	s.Traces = append(s.Traces, Zipf("zipf", pop, n, 1.0, 20*time.Second, seed))

	// Bursty multi-agent: each agent's tasks resolved like BestModelForTask.
	tables := score.Defaults()
	specs := []struct {
		name  string
		tasks []TaskShare
		burst float64
	}{
		{"coder", []TaskShare{{Task: "code_generation", Role: "coder", Weight: 6}, {Task: "code_review", Role: "reviewer", Weight: 2}, {Task: "tool_use", Role: "coder", Weight: 2}}, 20},
		{"researcher", []TaskShare{{Task: "reasoning", Role: "researcher", Weight: 5}, {Task: "summarization", Weight: 3}, {Task: "embedding", Weight: 2}}, 12},
		{"assistant", []TaskShare{{Task: "chat", Role: "assistant", Weight: 6}, {Task: "tool_use", Role: "assistant", Weight: 3}, {Task: "summarization", Role: "assistant", Weight: 1}}, 8},
		{"architect", []TaskShare{{Task: "code_generation", Role: "architect", Weight: 5}, {Task: "reasoning", Role: "architect", Weight: 3}, {Task: "chat", Weight: 2}}, 10},
		{"vision", []TaskShare{{Task: "vision", Weight: 7}, {Task: "embedding", Weight: 3}}, 6},
	}
	var agents []Agent
	for _, sp := range specs {
		a := Agent{Name: sp.name, Burst: sp.burst, Think: 4 * time.Second, Idle: 3 * time.Minute}
		am := AgentMix{Name: sp.name}
		for _, t := range sp.tasks {
			m, err := Resolve(tables, cands, s.Catalogue, BudgetBytes, t.Task, t.Role)
			if err != nil {
				return s, fmt.Errorf("sim: agent %s: %w", sp.name, err)
			}
			t.Model = m
			am.Tasks = append(am.Tasks, t)
			task := t.Task
			if t.Role != "" {
				task += "/" + t.Role
			}
			a.Mix = append(a.Mix, Weighted{Model: m, Weight: t.Weight, Task: task})
		}
		agents = append(agents, a)
		s.Agents = append(s.Agents, am)
	}
	s.Traces = append(s.Traces, Bursty("bursty multi-agent", agents, n, seed))

	// Phase change: the working set moves every quarter; 5 % noise.
	phases := [][]string{
		{"qwen2.5-coder:7b", "llama3.2:3b", "nomic-embed-text:latest"},
		{"deepseek-r1:7b", "qwen2.5:1.5b", "mxbai-embed-large:latest", "gemma2:2b"},
		{"mistral:7b", "phi3:3.8b", "qwen2.5-coder:1.5b"},
		{"llava:7b", "llama3.2:1b", "qwen2.5:3b", "nomic-embed-text:latest"},
	}
	s.Traces = append(s.Traces, PhaseChange("phase change", phases, s.Eligible, n/len(phases), 1.0, 0.05, 20*time.Second, seed))
	return s, nil
}

// Configs are the policies compared on a trace: ours (the manager's
// default), plain LRU, Ollama's own rule and Belady.
func (s Setup) Configs(tr Trace) []Config {
	b, prep := NewBelady(tr)
	def, _ := evict.ByName("")
	cfgs := []Config{{Label: def.Name() + " (ours, default)", Policy: def, Limits: s.Limits}}
	for _, p := range []evict.Policy{evict.LRFU{}, evict.GDSF{}, evict.LRU{}} {
		if p.Name() != def.Name() {
			cfgs = append(cfgs, Config{Label: p.Name(), Policy: p, Limits: s.Limits})
		}
	}
	cfgs = append(cfgs,
		Config{Label: "ollama rule (3 loaded, keep_alive 5m)", Policy: OllamaRule{}, Plan: OllamaPlan,
			Limits: evict.Limits{Budget: CardBytes - ollamaMinimum, MaxLoaded: 3}, KeepAlive: ollamaKeepAlive},
		Config{Label: "belady (offline)", Policy: b, Limits: s.Limits, Prepare: prep},
	)
	return cfgs
}

// Run replays every configuration and the optimum on tr; the optimum
// (fewest loads) comes last.
func (s Setup) Run(tr Trace) ([]Result, error) {
	var out []Result
	for _, c := range s.Configs(tr) {
		r, err := Replay(s.Catalogue, tr, c, Env{Budget: s.Limits.Budget})
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", c.Label, tr.Name, err)
		}
		out = append(out, r)
	}
	for _, o := range []struct {
		label string
		obj   Objective
	}{{"optimum, fewest bytes (offline)", FewestBytes}, {"optimum, fewest loads (offline)", FewestLoads}} {
		r, err := Optimum(s.Catalogue, tr, s.Limits, o.obj)
		if err != nil {
			return nil, fmt.Errorf("optimum on %s: %w", tr.Name, err)
		}
		r.Label = o.label
		out = append(out, r)
	}
	return out, nil
}

// Alternative is one row of the comparison with what users run instead.
type Alternative struct {
	Config
	Ours bool // VRAM Keeper's rows
}

// Alternatives are VRAM Keeper's settings and what a user who wants a
// budget would configure instead: Ollama with OLLAMA_MAX_LOADED_MODELS,
// and llama-swap.
func (s Setup) Alternatives() []Alternative {
	def, _ := evict.ByName("")
	predictor := func() Predictor { return predict.New() }
	ours := func(maxLoaded int, prefetch bool) Alternative {
		label := fmt.Sprintf("ours: %s, max_loaded %d", def.Name(), maxLoaded)
		if maxLoaded == 0 {
			label = fmt.Sprintf("ours: %s, max_loaded 0 (as many as fit)", def.Name())
		}
		if maxLoaded == s.Limits.MaxLoaded {
			label += " (default)"
		}
		c := Config{Label: label, Policy: def, Limits: evict.Limits{Budget: s.Limits.Budget, MaxLoaded: maxLoaded}}
		if prefetch {
			c.Label += " + prefetch"
			c.Prefetch = predictor
		}
		return Alternative{Config: c, Ours: true}
	}
	ollama := func(maxLoaded int, label string) Alternative {
		return Alternative{Config: Config{Label: label, Policy: OllamaRule{}, Plan: OllamaPlan,
			Limits: evict.Limits{Budget: CardBytes - ollamaMinimum, MaxLoaded: maxLoaded}, KeepAlive: ollamaKeepAlive}}
	}
	embed := func(m string) string {
		if slices.Contains(s.Embedding, m) {
			return "embedding"
		}
		return "chat"
	}
	return []Alternative{
		ours(s.Limits.MaxLoaded, false),
		ours(s.Limits.MaxLoaded, true),
		ours(0, false),
		ours(0, true),
		ollama(1, "Ollama, OLLAMA_MAX_LOADED_MODELS=1"),
		ollama(2, "Ollama, OLLAMA_MAX_LOADED_MODELS=2"),
		ollama(3, "Ollama, default (3 per GPU)"),
		{Config: Config{Label: "llama-swap, one group (its default)", Policy: evict.LRU{},
			Plan: SwapGroups{Group: func(string) string { return "" }, Exclusive: true}.Plan}},
		{Config: Config{Label: "llama-swap, two groups (chat models, embedding models)", Policy: evict.LRU{},
			Plan: SwapGroups{Group: embed}.Plan}},
	}
}

// Compare replays every alternative on tr with storage.
func (s Setup) Compare(tr Trace, st Storage) ([]Result, error) {
	var out []Result
	for _, a := range s.Alternatives() {
		r, err := Replay(s.Catalogue, tr, a.Config, Env{Budget: s.Limits.Budget, Storage: &st})
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", a.Label, tr.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// fileBytes is the size of a model's weights as its GGUF file stores them.
func fileBytes(m estimate.Model) (uint64, error) {
	var n uint64
	for _, t := range m.Tensors {
		tt, err := ggml.ParseTensorType(t.Type)
		if err != nil {
			return 0, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		e := uint64(1)
		for _, d := range t.Shape {
			e *= d
		}
		n += e * tt.TypeSize() / tt.BlockSize()
	}
	return n, nil
}

func family(name string) string {
	for i, c := range name {
		if c == ':' {
			return name[:i]
		}
	}
	return name
}

func shuffle(xs []string, seed uint64) {
	r := randFor(seed, 4)
	r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
}
