package score

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Task says what a job needs from a model. Require and Exclude decide
// whether a model qualifies at all; Prefer, Avoid and SizeWeight order the
// ones that do.
//
// Every term in Require, Exclude, Prefer and Avoid is matched the same way,
// case-insensitively: it matches a model when it equals one of the model's
// capabilities as /api/show reports them (completion, tools, insert, vision,
// embedding, thinking) or when it is a substring of the model's name, family
// or one of its families. That lets one list say "coder" (a name) and
// "insert" (a capability) side by side.
type Task struct {
	// Require: capabilities the model must have, all of them. Only
	// capabilities count here (not names), so that a model is never picked
	// for something it cannot do because its name happens to fit.
	Require []string `toml:"require,omitempty" json:"require,omitempty"`
	// Exclude: any match drops the model (e.g. embedding models for chat).
	Exclude []string `toml:"exclude,omitempty" json:"exclude,omitempty"`
	// Prefer: any match raises the model's fit (e.g. "code" for code tasks).
	Prefer []string `toml:"prefer,omitempty" json:"prefer,omitempty"`
	// Avoid: any match lowers the model's fit (e.g. coder models for chat).
	Avoid []string `toml:"avoid,omitempty" json:"avoid,omitempty"`
	// SizeWeight scales how much this task cares about speed (small models)
	// relative to fit; it multiplies the role's SizeWeight. 1 is neutral.
	SizeWeight  float64 `toml:"size_weight,omitempty" json:"size_weight,omitempty"`
	Description string  `toml:"description,omitempty" json:"description,omitempty"`
}

// Role says who is asking: the same task is worth a bigger, slower model to
// an architect than to an assistant answering quick questions.
type Role struct {
	// SizeWeight: how much small (fast) models are favoured. High for speed
	// roles, low where larger models within the budget are acceptable.
	SizeWeight float64 `toml:"size_weight,omitempty" json:"size_weight,omitempty"`
	// FitWeight: how much the task's Prefer/Avoid (and the role's Prefer)
	// count.
	FitWeight float64 `toml:"fit_weight,omitempty" json:"fit_weight,omitempty"`
	// Prefer: terms (matched like Task.Prefer) this role likes on top of the
	// task's own.
	Prefer      []string `toml:"prefer,omitempty" json:"prefer,omitempty"`
	Description string   `toml:"description,omitempty" json:"description,omitempty"`
}

// Tables are the task and role tables Rank works from. They are data so the
// config file can override or extend them (see Merge).
type Tables struct {
	Tasks map[string]Task
	Roles map[string]Role
}

// Defaults returns a fresh copy of the built-in tables; callers may modify
// it freely.
func Defaults() Tables {
	// Generation tasks all need "completion"; listing "embedding" in
	// Exclude as well keeps an embedding model out even if a server ever
	// reports both capabilities for it.
	noEmbed := func() []string { return []string{"embedding", "embed", "bert"} }
	return Tables{
		Tasks: map[string]Task{
			"code_generation": {
				Require:     []string{"completion"},
				Exclude:     noEmbed(),
				Prefer:      []string{"code", "devstral", "insert"},
				SizeWeight:  1,
				Description: "write or complete code",
			},
			"code_review": {
				Require:     []string{"completion"},
				Exclude:     noEmbed(),
				Prefer:      []string{"code", "devstral", "thinking"},
				SizeWeight:  0.7,
				Description: "read code and find problems",
			},
			"chat": {
				Require:     []string{"completion"},
				Exclude:     noEmbed(),
				Avoid:       []string{"code"},
				SizeWeight:  1,
				Description: "general conversation",
			},
			"reasoning": {
				Require:     []string{"completion"},
				Exclude:     noEmbed(),
				Prefer:      []string{"thinking", "r1", "qwq", "reason"},
				SizeWeight:  0.5,
				Description: "multi-step problems where quality beats speed",
			},
			"summarization": {
				Require:     []string{"completion"},
				Exclude:     noEmbed(),
				Avoid:       []string{"code"},
				SizeWeight:  1,
				Description: "condense text",
			},
			"tool_use": {
				Require:     []string{"completion", "tools"},
				Exclude:     noEmbed(),
				Avoid:       []string{"code"},
				SizeWeight:  0.8,
				Description: "call functions and tools",
			},
			"vision": {
				Require:     []string{"completion", "vision"},
				Exclude:     noEmbed(),
				Prefer:      []string{"vl", "vision", "llava"},
				SizeWeight:  1,
				Description: "understand images",
			},
			"embedding": {
				Require:     []string{"embedding"},
				Prefer:      []string{"embed", "bert"},
				SizeWeight:  1,
				Description: "turn text into vectors",
			},
		},
		Roles: map[string]Role{
			"": {
				SizeWeight:  0.5,
				FitWeight:   1,
				Description: "no role: fit first, then speed",
			},
			"assistant": {
				SizeWeight:  1,
				FitWeight:   0.4,
				Description: "quick answers: speed first",
			},
			"coder": {
				SizeWeight:  0.5,
				FitWeight:   1,
				Prefer:      []string{"code"},
				Description: "writes code: code models, moderate size",
			},
			"reviewer": {
				SizeWeight:  0.3,
				FitWeight:   1,
				Prefer:      []string{"code", "thinking"},
				Description: "reviews work: quality over speed",
			},
			"researcher": {
				SizeWeight:  0.3,
				FitWeight:   1,
				Prefer:      []string{"thinking", "r1", "qwq"},
				Description: "digs into questions: quality over speed",
			},
			"architect": {
				SizeWeight:  0.2,
				FitWeight:   1,
				Prefer:      []string{"thinking", "r1", "qwq"},
				Description: "designs systems: quality over speed, larger models welcome",
			},
		},
	}
}

// Merge returns new tables: t with the given overrides applied; t itself is
// not modified. For a name that already exists, each field that is set in
// the override replaces the built-in one: a non-nil slice (an empty TOML
// array "[]" clears a list), a non-zero weight, a non-empty description. A
// zero weight therefore means "keep"; use a small positive number to make a
// weight negligible. A new name is added; its unset weights take neutral
// values (task SizeWeight 1, role weights from the "" role) and a new task
// with no Require gets ["completion"], so a custom task never offers an
// embedding model by accident.
func (t Tables) Merge(tasks map[string]Task, roles map[string]Role) Tables {
	out := Tables{Tasks: make(map[string]Task, len(t.Tasks)+len(tasks)), Roles: make(map[string]Role, len(t.Roles)+len(roles))}
	for name, task := range t.Tasks {
		out.Tasks[name] = task.clone()
	}
	for name, role := range t.Roles {
		out.Roles[name] = role.clone()
	}
	for name, o := range tasks {
		base, ok := out.Tasks[name]
		if !ok {
			base = Task{SizeWeight: 1, Require: []string{"completion"}}
		}
		out.Tasks[name] = base.override(o)
	}
	neutral := out.Roles[""]
	if neutral.SizeWeight == 0 && neutral.FitWeight == 0 {
		neutral = Role{SizeWeight: 0.5, FitWeight: 1}
	}
	for name, o := range roles {
		base, ok := out.Roles[name]
		if !ok {
			base = Role{SizeWeight: neutral.SizeWeight, FitWeight: neutral.FitWeight}
		}
		out.Roles[name] = base.override(o)
	}
	return out
}

func (t Task) clone() Task {
	t.Require = slices.Clone(t.Require)
	t.Exclude = slices.Clone(t.Exclude)
	t.Prefer = slices.Clone(t.Prefer)
	t.Avoid = slices.Clone(t.Avoid)
	return t
}

func (t Task) override(o Task) Task {
	if o.Require != nil {
		t.Require = slices.Clone(o.Require)
	}
	if o.Exclude != nil {
		t.Exclude = slices.Clone(o.Exclude)
	}
	if o.Prefer != nil {
		t.Prefer = slices.Clone(o.Prefer)
	}
	if o.Avoid != nil {
		t.Avoid = slices.Clone(o.Avoid)
	}
	if o.SizeWeight != 0 {
		t.SizeWeight = o.SizeWeight
	}
	if o.Description != "" {
		t.Description = o.Description
	}
	return t
}

func (r Role) clone() Role {
	r.Prefer = slices.Clone(r.Prefer)
	return r
}

func (r Role) override(o Role) Role {
	if o.SizeWeight != 0 {
		r.SizeWeight = o.SizeWeight
	}
	if o.FitWeight != 0 {
		r.FitWeight = o.FitWeight
	}
	if o.Prefer != nil {
		r.Prefer = slices.Clone(o.Prefer)
	}
	if o.Description != "" {
		r.Description = o.Description
	}
	return r
}

// FieldError is one invalid field of a Task or Role, so a caller (the
// config loader) can point at the key in the file.
type FieldError struct {
	Field string // TOML key, with an index for list entries: "prefer[1]"
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports what would make the task misbehave: negative or
// non-finite weights, empty terms. Each problem is a *FieldError; several
// come joined (errors.Join).
func (t Task) Validate() error {
	return errors.Join(
		checkWeight("size_weight", t.SizeWeight),
		checkTerms("require", t.Require),
		checkTerms("exclude", t.Exclude),
		checkTerms("prefer", t.Prefer),
		checkTerms("avoid", t.Avoid),
	)
}

// Validate reports negative or non-finite weights and empty terms, as
// Task.Validate does.
func (r Role) Validate() error {
	return errors.Join(
		checkWeight("size_weight", r.SizeWeight),
		checkWeight("fit_weight", r.FitWeight),
		checkTerms("prefer", r.Prefer),
	)
}

func checkWeight(key string, w float64) error {
	if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
		return &FieldError{Field: key, Err: fmt.Errorf("must be a finite number ≥ 0, got %v", w)}
	}
	return nil
}

func checkTerms(key string, terms []string) error {
	var errs []error
	for i, s := range terms {
		if strings.TrimSpace(s) == "" {
			errs = append(errs, &FieldError{Field: fmt.Sprintf("%s[%d]", key, i), Err: errors.New("empty term")})
		}
	}
	return errors.Join(errs...)
}

// TaskNames returns the task names, sorted.
func (t Tables) TaskNames() []string { return slices.Sorted(maps.Keys(t.Tasks)) }

// RoleNames returns the role names, sorted ("" first).
func (t Tables) RoleNames() []string { return slices.Sorted(maps.Keys(t.Roles)) }
