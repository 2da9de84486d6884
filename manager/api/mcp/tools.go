package mcp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/keeper"
)

// tools are the handlers, on one Keeper.
type tools struct {
	k   keeper.Keeper
	opt Options
}

// speed says which deadline a tool gets, and whether it reports progress.
type speed int

const (
	reads speed = iota // answers from the manager's state
	loads              // may load or unload models: minutes
)

// tool is one tool's definition and handler: the input and output types
// give the schemas; the handler returns the output and a one-line summary.
type tool[In, Out any] struct {
	def    sdk.Tool
	speed  speed
	handle func(ctx context.Context, in In) (Out, string, error)
	// input, when set, edits the input schema inferred from In (defaults,
	// bounds) before it is registered.
	input func(*jsonschema.Schema)
}

func add[In, Out any](s *sdk.Server, t tools, tl tool[In, Out]) {
	def := tl.def
	if tl.input != nil {
		sch, err := jsonschema.For[In](nil)
		if err != nil {
			panic(fmt.Sprintf("mcp: %s: input schema: %v", def.Name, err)) // types are fixed: a bug
		}
		tl.input(sch)
		def.InputSchema = sch
	}
	within := t.opt.ReadTimeout
	if tl.speed == loads {
		within = t.opt.LoadTimeout
	}
	sdk.AddTool(s, &def, func(ctx context.Context, req *sdk.CallToolRequest, in In) (*sdk.CallToolResult, Out, error) {
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		if tl.speed == loads {
			defer t.progress(ctx, req)()
		}
		out, summary, err := tl.handle(ctx, in)
		if err != nil {
			var zero Out
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
				err = fmt.Errorf("%s gave no answer within %s (a load may still finish: status shows it): %w", def.Name, within, err)
			}
			// A plain error: the SDK answers it as a tool result with
			// isError and this text, never as a protocol error.
			return nil, zero, err
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: summary}}}, out, nil
	})
}

// progress tells a client that asked for progress (a progress token) how
// long the call has run and what loads, every ProgressEvery, until the
// returned function is called.
func (t tools) progress(ctx context.Context, req *sdk.CallToolRequest) (stop func()) {
	token := req.Params.GetProgressToken()
	if token == nil || req.Session == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		began := time.Now()
		tick := time.NewTicker(t.opt.ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				took := now.Sub(began).Round(time.Second)
				msg := fmt.Sprintf("working for %s", took)
				if s := t.k.Snapshot(); s.Loading != "" {
					msg = fmt.Sprintf("loading %s (%s)", s.Loading, took)
				}
				// A client that left makes this fail; the call ends anyway.
				_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{
					ProgressToken: token, Progress: took.Seconds(), Message: msg})
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

func addTools(s *sdk.Server, t tools) {
	snap := t.k.Snapshot()
	tasks, roles := strings.Join(snap.Tasks, ", "), strings.Join(snap.Roles, ", ")
	no := false
	local := &no
	readOnly := &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: local}
	// Nothing is lost by an unload: a model unloaded loads again on demand.
	changes := &sdk.ToolAnnotations{DestructiveHint: &no, IdempotentHint: true, OpenWorldHint: local}

	add(s, t, tool[struct{}, statusOut]{
		def: sdk.Tool{Name: "status", Title: "VRAM status", Annotations: readOnly,
			Description: "The GPU's memory now: the budget VRAM Keeper keeps its models in, the card's size, what its loaded models " +
				"and other programs use, what is free, where the numbers come from (a GPU driver, or estimated), the loaded models " +
				"with their size and context length, a load in progress, and whether the GPU was given back."},
		handle: t.status,
	})
	add(s, t, tool[struct{}, modelsOut]{
		def: sdk.Tool{Name: "models", Title: "Installed models", Annotations: readOnly,
			Description: "Every model installed in Ollama, with what it needs in VRAM at its context length (estimated before its " +
				"first load, measured after), whether it fits the budget and fits now beside what is loaded, its priority " +
				"(10 small and fast to 1 large), and whether it is loaded."},
		handle: t.models,
	})
	add(s, t, tool[bestIn, bestOut]{
		def: sdk.Tool{Name: "best_model", Title: "Best model for a task", Annotations: changes,
			Description: "Choose the best installed model for a task (and a role) that fits the VRAM budget, and load it, " +
				"evicting other models as the policy says; answers the model, why it was chosen and what was evicted. " +
				"With load false, only answers which model it would be and what loading it would evict. Tasks: " + tasks +
				". Roles: " + roles + "."},
		speed:  loads,
		handle: t.best,
		input: func(s *jsonschema.Schema) {
			s.Properties["task"].Description = "what the model is for: one of " + tasks
			s.Properties["role"].Description = "who asks (optional): one of " + roles
			// No "default": true on load: go-sdk v1.8.0 applying a default to
			// arguments sent as null panics (jsonschema-go assigns into a nil
			// map) and takes the server down. An absent load is true anyway.
		},
	})
	add(s, t, tool[fitsIn, fitsOut]{
		def: sdk.Tool{Name: "fits", Title: "Does a model fit?", Annotations: readOnly,
			Description: "Whether a model fits in VRAM now, at its own context length or the one given: beside what is loaded, " +
				"or after evicting which models (in order); whether it can never fit the budget; and the largest context " +
				"length that fits now and once every model that may be evicted is gone. Loads nothing."},
		handle: t.fits,
		input:  contextBounds,
	})
	add(s, t, tool[loadIn, loadOut]{
		def: sdk.Tool{Name: "load_model", Title: "Load a model", Annotations: changes,
			Description: "Load a model (at its own context length, or the one given), evicting others as needed to stay within " +
				"the VRAM budget; answers the context it is loaded at and what was evicted. Requests through VRAM Keeper's " +
				"proxy to this model then use that context."},
		speed:  loads,
		handle: t.load,
		input:  contextBounds,
	})
	add(s, t, tool[unloadIn, unloadOut]{
		def: sdk.Tool{Name: "unload_model", Title: "Unload a model", Annotations: changes,
			Description: "Unload a model from the GPU, after the requests using it end."},
		speed:  loads,
		handle: t.unload,
	})
	add(s, t, tool[struct{}, gaveBackOut]{
		def: sdk.Tool{Name: "give_gpu_back", Title: "Give the GPU back", Annotations: changes,
			Description: "Unload every model VRAM Keeper loaded (pinned ones too) to free the GPU for another job; " +
				"nothing loads until restore_models, which puts the same models back."},
		speed:  loads,
		handle: t.giveBack,
	})
	add(s, t, tool[struct{}, restoredOut]{
		def: sdk.Tool{Name: "restore_models", Title: "Restore the models", Annotations: changes,
			Description: "After give_gpu_back: load the models it unloaded again, at their context lengths, and let loads run."},
		speed:  loads,
		handle: t.restore,
	})
}

// contextBounds limits context_length to what the manager accepts.
func contextBounds(s *jsonschema.Schema) {
	lo, hi := 0.0, float64(manager.MaxContext)
	p := s.Properties["context_length"]
	p.Minimum, p.Maximum = &lo, &hi
}

func gib(b uint64) string { return config.FormatBytes(b) }

// The tools' inputs and outputs. Field tags give the JSON Schemas: a field
// without omitempty is required; jsonschema is its description.

type loadedOut struct {
	Name          string `json:"name"`
	SizeBytes     uint64 `json:"size_bytes" jsonschema:"what it holds on the card, as Ollama reports it"`
	ContextLength int    `json:"context_length" jsonschema:"the context length it is loaded at"`
	CPUPercent    int    `json:"cpu_percent" jsonschema:"how much of it Ollama put on the CPU (0: all on the GPU)"`
	Pinned        bool   `json:"pinned" jsonschema:"never evicted automatically"`
	InFlight      int    `json:"in_flight" jsonschema:"requests it is serving now"`
}

type statusOut struct {
	BudgetBytes   uint64      `json:"budget_bytes" jsonschema:"what VRAM Keeper's models may use together"`
	CardBytes     uint64      `json:"card_bytes" jsonschema:"the card's size"`
	UsedBytes     uint64      `json:"used_bytes" jsonschema:"what VRAM Keeper's loaded models hold"`
	OtherBytes    uint64      `json:"other_bytes" jsonschema:"what other programs hold (known through a GPU driver only)"`
	FreeBytes     uint64      `json:"free_bytes" jsonschema:"free on the card (the driver's figure, or the card less our models when estimated)"`
	Source        string      `json:"source" jsonschema:"where the card's numbers come from: a driver (nvml, amdgpu...) or estimated"`
	SourceNote    string      `json:"source_note,omitempty"`
	OllamaUp      bool        `json:"ollama_up"`
	OllamaVersion string      `json:"ollama_version,omitempty"`
	OllamaError   string      `json:"ollama_error,omitempty"`
	Paused        bool        `json:"paused" jsonschema:"automatic evictions are paused"`
	Loading       string      `json:"loading,omitempty" jsonschema:"the model being loaded now"`
	LoadingFor    float64     `json:"loading_seconds,omitempty" jsonschema:"for how long it has been loading"`
	Yielded       bool        `json:"yielded" jsonschema:"the GPU was given back: nothing loads until restore_models"`
	YieldedModels []string    `json:"yielded_models,omitempty" jsonschema:"what restore_models puts back"`
	Loaded        []loadedOut `json:"loaded" jsonschema:"the loaded models, most recently used first"`
}

func (t tools) status(context.Context, struct{}) (statusOut, string, error) {
	s := t.k.Snapshot()
	out := statusOut{BudgetBytes: s.Budget, CardBytes: s.VRAM.Total, UsedBytes: s.Used, OtherBytes: s.Others, FreeBytes: s.Free,
		Source: s.VRAM.Source, SourceNote: s.VRAM.Note, OllamaUp: s.OllamaUp, OllamaVersion: s.Version, OllamaError: s.RuntimeErr,
		Paused: s.Paused, Loading: s.Loading, Yielded: s.Yielded, YieldedModels: s.YieldedModels, Loaded: []loadedOut{}}
	if s.Loading != "" && !s.LoadingSince.IsZero() {
		out.LoadingFor = max(time.Since(s.LoadingSince).Round(time.Second).Seconds(), 0)
	}
	var names []string
	for _, m := range s.LoadedModels() {
		out.Loaded = append(out.Loaded, loadedOut{Name: m.Name, SizeBytes: m.SizeBytes, ContextLength: m.LoadedCtx,
			CPUPercent: m.CPUPercent, Pinned: m.Pinned, InFlight: m.InFlight})
		names = append(names, m.Name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s of the %s budget used by %s", gib(s.Used), gib(s.Budget), count(len(names), "model"))
	if len(names) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(names, ", "))
	}
	if s.Others > 0 {
		fmt.Fprintf(&b, "; other programs %s", gib(s.Others))
	}
	fmt.Fprintf(&b, "; %s free of %s (%s)", gib(s.Free), gib(s.VRAM.Total), s.VRAM.Source)
	if s.Loading != "" {
		fmt.Fprintf(&b, "; loading %s", s.Loading)
	}
	if s.Yielded {
		b.WriteString("; the GPU is given back: restore_models puts the models back")
	}
	if !s.OllamaUp {
		fmt.Fprintf(&b, "; Ollama unreachable: %s", s.RuntimeErr)
	}
	return out, b.String(), nil
}

type modelOut struct {
	Name          string   `json:"name"`
	Parameters    string   `json:"parameters,omitempty" jsonschema:"its size in parameters (7.6B)"`
	Quantization  string   `json:"quantization,omitempty"`
	Capabilities  []string `json:"capabilities" jsonschema:"what Ollama says it can do: completion, tools, insert, vision, embedding, thinking"`
	ContextLength int      `json:"context_length" jsonschema:"the context length it loads at"`
	ContextAuto   bool     `json:"context_auto,omitempty" jsonschema:"its context is picked at each load: the largest that fits"`
	EstimateBytes uint64   `json:"estimate_bytes" jsonschema:"what it needs in VRAM at that context"`
	Measured      bool     `json:"measured" jsonschema:"estimate_bytes was measured at an earlier load"`
	FitsBudget    bool     `json:"fits_budget" jsonschema:"it fits the budget once others are evicted"`
	FitsNow       bool     `json:"fits_now" jsonschema:"it is loaded, or fits beside the models loaded now"`
	MaxContextNow int      `json:"max_context_now" jsonschema:"the largest context length that fits beside what is loaded now (0: none)"`
	Priority      int      `json:"priority" jsonschema:"10 (small, fast) to 1 (large)"`
	Loaded        bool     `json:"loaded"`
	Pinned        bool     `json:"pinned"`
	State         string   `json:"state" jsonschema:"idle, loading, loaded, unloading or failed"`
	Error         string   `json:"error,omitempty" jsonschema:"why its last load failed, or why it cannot be estimated"`
}

type modelsOut struct {
	Models []modelOut `json:"models"`
}

func (t tools) models(context.Context, struct{}) (modelsOut, string, error) {
	s := t.k.Snapshot()
	out := modelsOut{Models: make([]modelOut, 0, len(s.Models))}
	var loaded []string
	fitBudget, fitNow := 0, 0
	for _, v := range s.Models {
		m := modelOut{Name: v.Name, Parameters: v.Parameters, Quantization: v.Quantization, Capabilities: v.Capabilities,
			ContextLength: v.NumCtx, ContextAuto: v.ContextAuto, EstimateBytes: v.EstimateBytes, Measured: v.Calibrated,
			FitsBudget: v.Fits, FitsNow: fitsNow(v), MaxContextNow: v.MaxFitCtx, Priority: v.Priority, Loaded: v.Loaded,
			Pinned: v.Pinned, State: string(v.State), Error: v.Error}
		if m.Capabilities == nil {
			m.Capabilities = []string{}
		}
		if m.Error == "" {
			m.Error = v.EstimateErr
		}
		out.Models = append(out.Models, m)
		if v.Loaded {
			loaded = append(loaded, v.Name)
		}
		if v.Fits {
			fitBudget++
		}
		if m.FitsNow {
			fitNow++
		}
	}
	summary := fmt.Sprintf("%s installed, %d loaded", count(len(s.Models), "model"), len(loaded))
	if len(loaded) > 0 {
		summary += " (" + strings.Join(loaded, ", ") + ")"
	}
	summary += fmt.Sprintf("; %d fit the %s budget, %d fit now beside what is loaded", fitBudget, gib(s.Budget), fitNow)
	return out, summary, nil
}

// fitsNow: the model is loaded, or its context fits the room left beside
// what is loaded (the largest context that fits now reaches its own; an
// "auto" model takes what fits).
func fitsNow(v manager.ModelView) bool {
	switch {
	case v.Loaded:
		return true
	case v.EstimateBytes == 0:
		return false // not estimated yet
	case v.ContextAuto:
		return v.MaxFitCtx > 0
	}
	return v.MaxFitCtx >= v.NumCtx
}

type bestIn struct {
	Task string `json:"task"`
	Role string `json:"role,omitempty"`
	Load *bool  `json:"load,omitempty" jsonschema:"load the model (default true); false only answers which model and what it would evict"`
}

type bestOut struct {
	Model         string   `json:"model"`
	Reason        string   `json:"reason" jsonschema:"why this model, and why not the ones ranked above it"`
	Loaded        bool     `json:"loaded" jsonschema:"the model is loaded now"`
	AlreadyLoaded bool     `json:"already_loaded" jsonschema:"it was loaded before the call: nothing changed"`
	Evicted       []string `json:"evicted" jsonschema:"the models unloaded to make room; with load false, the ones a load would unload"`
	Bytes         uint64   `json:"bytes" jsonschema:"what it takes in VRAM (measured when loaded, else estimated)"`
	ContextLength int      `json:"context_length" jsonschema:"the context length it is (or would be) loaded at"`
	Priority      int      `json:"priority" jsonschema:"10 (small, fast) to 1 (large)"`
	DryRun        bool     `json:"dry_run" jsonschema:"load was false: nothing was loaded or evicted"`
	Blocked       string   `json:"blocked,omitempty" jsonschema:"with load false: why a load would wait"`
}

func (t tools) best(ctx context.Context, in bestIn) (bestOut, string, error) {
	if in.Load != nil && !*in.Load {
		p, err := t.k.Plan(ctx, manager.PlanRequest{Task: in.Task, Role: in.Role})
		if err != nil {
			return bestOut{}, "", err
		}
		out := bestOut{Model: p.Model, Reason: p.Reason, Loaded: p.Loaded, AlreadyLoaded: p.Loaded, Evicted: nonNil(p.Evict),
			Bytes: p.NeedBytes, ContextLength: p.ContextLength, DryRun: true, Blocked: p.Blocked}
		if v, ok := t.k.Snapshot().Model(p.Model); ok {
			out.Priority = v.Priority
		}
		summary := fmt.Sprintf("would load %s (%s) for %s", p.Model, gib(p.NeedBytes), in.Task)
		switch {
		case p.Loaded:
			summary = fmt.Sprintf("%s for %s is loaded already", p.Model, in.Task)
		case len(p.Evict) > 0:
			summary += ", evicting " + strings.Join(p.Evict, ", ")
		}
		if p.Blocked != "" {
			summary += "; " + p.Blocked
		}
		return out, summary + ": " + p.Reason, nil
	}
	c, err := t.k.BestModelForTask(ctx, in.Task, in.Role)
	if err != nil {
		return bestOut{}, "", err
	}
	out := bestOut{Model: c.Model, Reason: c.Reason, Loaded: true, AlreadyLoaded: c.Already, Evicted: nonNil(c.Evicted),
		Bytes: c.Bytes, Priority: c.Priority}
	if v, ok := t.k.Snapshot().Model(c.Model); ok {
		out.ContextLength = v.LoadedCtx
	}
	summary := fmt.Sprintf("loaded %s (%s) for %s", c.Model, gib(c.Bytes), in.Task)
	switch {
	case c.Already:
		summary = fmt.Sprintf("%s for %s was loaded already", c.Model, in.Task)
	case len(c.Evicted) > 0:
		summary += ", evicting " + strings.Join(c.Evicted, ", ")
	}
	return out, summary + ": " + c.Reason, nil
}

type fitsIn struct {
	Name          string `json:"name" jsonschema:"the model, as Ollama names it (llama3.2:3b; :latest may be left off)"`
	ContextLength int    `json:"context_length,omitempty" jsonschema:"the context length to check (default: the model's own)"`
}

type fitsOut struct {
	Model         string   `json:"model"`
	ContextLength int      `json:"context_length" jsonschema:"the context length checked"`
	NeedBytes     uint64   `json:"need_bytes" jsonschema:"what it takes there (measured at an earlier load, or estimated)"`
	Measured      bool     `json:"measured"`
	Loaded        bool     `json:"loaded" jsonschema:"it is loaded at that context already"`
	FitsNow       bool     `json:"fits_now" jsonschema:"it fits beside what is loaded, evicting nothing"`
	CanLoad       bool     `json:"can_load" jsonschema:"a load would go ahead now, evicting the models in evict first"`
	Evict         []string `json:"evict" jsonschema:"what a load would evict to make room, in order"`
	EvictBytes    uint64   `json:"evict_bytes"`
	NeverFits     bool     `json:"never_fits" jsonschema:"it is larger than the whole budget at this context"`
	Blocked       string   `json:"blocked,omitempty" jsonschema:"why a load would not go ahead now, or would wait"`
	BudgetBytes   uint64   `json:"budget_bytes"`
	FreeBytes     uint64   `json:"free_bytes" jsonschema:"what the budget (less other programs' use) leaves beside the models loaded"`
	MaxContextNow int      `json:"max_context_now" jsonschema:"the largest context length that fits beside what is loaded (0: none)"`
	MaxContext    int      `json:"max_context" jsonschema:"the largest context length that fits once every model that may be evicted is gone (0: none)"`
}

func (t tools) fits(ctx context.Context, in fitsIn) (fitsOut, string, error) {
	p, err := t.k.Plan(ctx, manager.PlanRequest{Model: in.Name, ContextLength: in.ContextLength})
	if err != nil {
		return fitsOut{}, "", err
	}
	out := fitsOut{Model: p.Model, ContextLength: p.ContextLength, NeedBytes: p.NeedBytes, Measured: p.Measured, Loaded: p.Loaded,
		FitsNow: p.FitsNow, CanLoad: p.CanLoad, Evict: nonNil(p.Evict), EvictBytes: p.EvictBytes, NeverFits: p.NeverFits,
		Blocked: p.Blocked, BudgetBytes: p.BudgetBytes, FreeBytes: p.FreeBytes, MaxContextNow: p.MaxContextNow, MaxContext: p.MaxContext}
	at := fmt.Sprintf("%s at %d tokens (%s)", p.Model, p.ContextLength, gib(p.NeedBytes))
	var summary string
	switch {
	case p.Loaded:
		summary = at + " is loaded"
	case p.NeverFits:
		summary = fmt.Sprintf("%s never fits the %s budget", at, gib(p.BudgetBytes))
	case p.FitsNow:
		summary = at + " fits now, evicting nothing"
	case len(p.Evict) > 0:
		summary = fmt.Sprintf("%s fits after evicting %s (%s)", at, strings.Join(p.Evict, ", "), gib(p.EvictBytes))
	default:
		summary = at + " does not fit now"
	}
	if p.Blocked != "" && !p.NeverFits {
		summary += "; " + p.Blocked
	}
	summary += fmt.Sprintf("; largest context that fits: %d now, %d after evictions", p.MaxContextNow, p.MaxContext)
	return out, summary, nil
}

type loadIn struct {
	Name          string `json:"name" jsonschema:"the model, as Ollama names it (llama3.2:3b; :latest may be left off)"`
	ContextLength int    `json:"context_length,omitempty" jsonschema:"the context length to load it at (default: the model's own)"`
}

type loadOut struct {
	Model         string   `json:"model"`
	ContextLength int      `json:"context_length" jsonschema:"the context length it is loaded at"`
	AlreadyLoaded bool     `json:"already_loaded" jsonschema:"it was loaded at that context before the call"`
	Evicted       []string `json:"evicted" jsonschema:"the models unloaded to make room"`
	Bytes         uint64   `json:"bytes" jsonschema:"what it holds in VRAM"`
}

func (t tools) load(ctx context.Context, in loadIn) (loadOut, string, error) {
	r, err := t.k.LoadAt(ctx, in.Name, in.ContextLength, "loaded through MCP")
	if err != nil {
		return loadOut{}, "", err
	}
	out := loadOut{Model: r.Model, ContextLength: r.NumCtx, AlreadyLoaded: r.Already, Evicted: nonNil(r.Evicted)}
	if v, ok := t.k.Snapshot().Model(r.Model); ok {
		out.Bytes = v.SizeBytes
	}
	summary := fmt.Sprintf("loaded %s at %d tokens (%s)", r.Model, r.NumCtx, gib(out.Bytes))
	switch {
	case r.Already:
		summary = fmt.Sprintf("%s was loaded already at %d tokens", r.Model, r.NumCtx)
	case len(r.Evicted) > 0:
		summary += ", evicting " + strings.Join(r.Evicted, ", ")
	}
	return out, summary, nil
}

type unloadIn struct {
	Name string `json:"name" jsonschema:"the model, as Ollama names it"`
}

type unloadOut struct {
	Model    string `json:"model"`
	Unloaded bool   `json:"unloaded"`
}

func (t tools) unload(ctx context.Context, in unloadIn) (unloadOut, string, error) {
	if err := t.k.Unload(ctx, in.Name); err != nil {
		return unloadOut{}, "", err
	}
	name := in.Name
	if v, ok := t.k.Snapshot().Lookup(in.Name); ok {
		name = v.Name
	}
	return unloadOut{Model: name, Unloaded: true}, "unloaded " + name, nil
}

type gaveBackOut struct {
	Unloaded []string `json:"unloaded" jsonschema:"the models unloaded; restore_models puts them back"`
}

func (t tools) giveBack(ctx context.Context, _ struct{}) (gaveBackOut, string, error) {
	names, err := t.k.Yield(ctx)
	if err != nil {
		return gaveBackOut{}, "", err
	}
	summary := "gave the GPU back (no model was loaded)"
	if len(names) > 0 {
		summary = "gave the GPU back: unloaded " + strings.Join(names, ", ")
	}
	return gaveBackOut{Unloaded: nonNil(names)}, summary + "; nothing loads until restore_models", nil
}

type restoredOut struct {
	Restored []string `json:"restored" jsonschema:"the models loaded again"`
}

func (t tools) restore(ctx context.Context, _ struct{}) (restoredOut, string, error) {
	names, err := t.k.Restore(ctx)
	if err != nil {
		return restoredOut{}, "", err
	}
	summary := "nothing to restore; loads run again"
	if len(names) > 0 {
		summary = "restored " + strings.Join(names, ", ")
	}
	return restoredOut{Restored: nonNil(names)}, summary, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
