package score

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Errors Rank returns, wrapped with the name asked for and the known names.
var (
	ErrUnknownTask = errors.New("unknown task")
	ErrUnknownRole = errors.New("unknown role")
)

// Candidate is one installed model as /api/show describes it.
type Candidate struct {
	Name     string
	Family   string
	Families []string
	// ParamsB is billions of parameters; 0 = unknown (see ParseParams).
	ParamsB      float64
	Capabilities []string
}

// Ranked is a candidate with its score, best first in Rank's result.
type Ranked struct {
	Candidate
	// Priority is Priority(ParamsB), or 0 when the size is unknown.
	Priority int
	Score    float64
	// Reason is one line for people, e.g.
	// "qwen2.5-coder:7b: code model for code_generation, priority 8 (7.6B)".
	Reason string
}

// Weights of the fit terms (see Rank). A task's Prefer is the main signal;
// a role's Prefer is a nudge on top, so it can break ties between models that
// suit the task equally without overruling the task.
const (
	taskPreferFit = 1.0
	taskAvoidFit  = -1.0
	rolePreferFit = 0.5
	// unknownSpeed is the speed term for a model of unknown size: neutral,
	// neither favoured as tiny nor punished as huge.
	unknownSpeed = 0.5
)

// Rank orders the candidates for a task and a role, best first; ties go by
// name so the result is deterministic. Candidates that lack a capability in
// the task's Require, or match any term of its Exclude, are left out.
//
// The score is a weighted sum of two terms:
//
//	speed = (Priority − 1) / 9          // 1 for ≤3B, 0 for ≥24B, 0.5 if size unknown
//	fit   = 1·[task Prefer matches] − 1·[task Avoid matches] + 0.5·[role Prefer matches]
//	Score = role.FitWeight·fit + role.SizeWeight·task.SizeWeight·speed
//
// So a role with a high SizeWeight (assistant: 1) lets speed dominate, and a
// role with a low one (architect: 0.2, reviewer and researcher: 0.3) lets fit
// decide, accepting larger models: speed only breaks ties there. The speed
// term never rewards size itself; the budget, not the score, decides what is
// too big. Worked example, code_generation (task SizeWeight 1), a 3B generic
// model (speed 1, fit 0) against a 13B coder (speed 4/9, fit 1):
//
//	assistant (1, 0.4):  3B = 1.00, 13B = 0.4 + 0.44 = 0.84 → the 3B generic
//	"" (0.5, 1):         3B = 0.50, 13B = 1 + 0.22 = 1.22   → the 13B coder
//	architect (0.2, 1):  3B = 0.20, 13B = 1 + 0.09 = 1.09   → the 13B coder
//
// In general the small generic model wins when SizeWeight·task.SizeWeight·
// (speed₁ − speed₂) exceeds FitWeight·(fit₂ − fit₁).
func (t Tables) Rank(cands []Candidate, task, role string) ([]Ranked, error) {
	tk, ok := t.Tasks[task]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownTask, task, strings.Join(t.TaskNames(), ", "))
	}
	rl, ok := t.Roles[role]
	if !ok {
		names := t.RoleNames()
		for i, n := range names {
			if n == "" {
				names[i] = `"" (none)`
			}
		}
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownRole, role, strings.Join(names, ", "))
	}

	out := make([]Ranked, 0, len(cands))
	for _, c := range cands {
		if !hasAll(c.Capabilities, tk.Require) {
			continue
		}
		if _, bad := match(tk.Exclude, c); bad {
			continue
		}
		r := Ranked{Candidate: c}
		speed := unknownSpeed
		if c.ParamsB > 0 {
			r.Priority = Priority(c.ParamsB)
			speed = float64(r.Priority-1) / 9
		}
		var fit float64
		what := "general model"
		if term, ok := match(tk.Prefer, c); ok {
			fit += taskPreferFit
			what = term + " model"
		} else if term, ok := match(tk.Avoid, c); ok {
			fit += taskAvoidFit
			what = term + " model, avoided"
		}
		var roleNote string
		if term, ok := match(rl.Prefer, c); ok && role != "" {
			fit += rolePreferFit
			roleNote = fmt.Sprintf(" (%s likes %s)", role, term)
		}
		r.Score = rl.FitWeight*fit + rl.SizeWeight*tk.SizeWeight*speed
		r.Reason = reason(c, what, task, role, roleNote, r.Priority)
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Ranked) int {
		// Compare with a tolerance: sums of float weights that are equal
		// on paper may differ in the last bit, and the tie-break by name
		// must still apply.
		const eps = 1e-9
		if d := a.Score - b.Score; d > eps {
			return -1
		} else if d < -eps {
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out, nil
}

func reason(c Candidate, what, task, role, roleNote string, prio int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s for %s", c.Name, what, task)
	if role != "" {
		fmt.Fprintf(&b, " as %s", role)
	}
	b.WriteString(roleNote)
	if prio > 0 {
		fmt.Fprintf(&b, ", priority %d (%s)", prio, FormatParams(c.ParamsB))
	} else {
		b.WriteString(", size unknown")
	}
	return b.String()
}

// hasAll reports whether caps holds every required capability.
func hasAll(caps, required []string) bool {
	for _, r := range required {
		if !slices.ContainsFunc(caps, func(c string) bool { return strings.EqualFold(c, r) }) {
			return false
		}
	}
	return true
}

// match returns the first term (in list order) that matches the candidate:
// equal to a capability, or a substring of its name, family or families; all
// case-insensitive.
func match(terms []string, c Candidate) (string, bool) {
	for _, term := range terms {
		t := strings.ToLower(strings.TrimSpace(term))
		if t == "" {
			continue
		}
		if slices.ContainsFunc(c.Capabilities, func(cap string) bool { return strings.EqualFold(cap, t) }) {
			return term, true
		}
		if strings.Contains(strings.ToLower(c.Name), t) || strings.Contains(strings.ToLower(c.Family), t) {
			return term, true
		}
		if slices.ContainsFunc(c.Families, func(f string) bool { return strings.Contains(strings.ToLower(f), t) }) {
			return term, true
		}
	}
	return "", false
}
