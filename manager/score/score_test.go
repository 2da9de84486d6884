package score

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestPriority(t *testing.T) {
	tests := []struct {
		params float64
		want   int
	}{
		{-1, 10},
		{math.NaN(), 10},
		{0, 10},
		{0.5, 10},
		{1, 10},
		{3, 10},
		{5, 9},   // 10 − 2·(2/4) = 9
		{7, 8},   // anchor
		{7.6, 8}, // 8 − 3·(0.6/6) = 7.7
		{8, 8},   // 7.5 rounds half away from zero
		{10, 7},  // 8 − 3·(3/6) = 6.5 → 7
		{13, 5},  // anchor
		{14.8, 4},
		{18.5, 3}, // 5 − 4·(5.5/11) = 3
		{24, 1},   // anchor
		{70, 1},
		{math.Inf(1), 1},
	}
	for _, tt := range tests {
		if got := Priority(tt.params); got != tt.want {
			t.Errorf("Priority(%v) = %d, want %d", tt.params, got, tt.want)
		}
	}
}

func TestPriorityMonotonic(t *testing.T) {
	prev := Priority(0)
	for p := 0.0; p <= 40; p += 0.1 {
		got := Priority(p)
		if got > prev || got < 1 || got > 10 {
			t.Fatalf("Priority(%.1f) = %d after %d: not monotonic or out of 1..10", p, got, prev)
		}
		prev = got
	}
}

func TestParseParams(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"", 0},
		{"7.6B", 7.6},
		{"494.03M", 0.49403},
		{"1.2T", 1200},
		{"137M", 0.137},
		{" 8b ", 8},
		{"8x7B", 56},
		{"22K", 0.000022},
		{"7000000000", 7},
		{"unknown", 0},
		{"-3B", 0},
		{"B", 0},
		{"x7B", 0},
	}
	for _, tt := range tests {
		if got := ParseParams(tt.in); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("ParseParams(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFormatParams(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "size unknown"},
		{0.49403, "494M"},
		{7.6, "7.6B"},
		{7.62, "7.6B"},
		{70, "70B"},
	}
	for _, tt := range tests {
		if got := FormatParams(tt.in); got != tt.want {
			t.Errorf("FormatParams(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A small model zoo shaped like real /api/show answers.
var (
	qwenCoder7  = Candidate{Name: "qwen2.5-coder:7b", Family: "qwen2", Families: []string{"qwen2"}, ParamsB: 7.6, Capabilities: []string{"completion", "tools", "insert"}}
	codellama13 = Candidate{Name: "codellama:13b", Family: "llama", ParamsB: 13, Capabilities: []string{"completion", "insert"}}
	llama3b     = Candidate{Name: "llama3.2:3b", Family: "llama", ParamsB: 3.2, Capabilities: []string{"completion", "tools"}}
	llama8b     = Candidate{Name: "llama3.1:8b", Family: "llama", ParamsB: 8, Capabilities: []string{"completion", "tools"}}
	nomic       = Candidate{Name: "nomic-embed-text:latest", Family: "nomic-bert", ParamsB: 0.137, Capabilities: []string{"embedding"}}
	minilm      = Candidate{Name: "all-minilm:latest", Family: "bert", ParamsB: 0.023, Capabilities: []string{"embedding"}}
	llava7      = Candidate{Name: "llava:7b", Family: "llama", Families: []string{"llama", "clip"}, ParamsB: 7, Capabilities: []string{"completion", "vision"}}
	deepseekR1  = Candidate{Name: "deepseek-r1:8b", Family: "qwen3", ParamsB: 8.2, Capabilities: []string{"completion", "thinking"}}
	mystery     = Candidate{Name: "mystery:latest", Family: "llama", Capabilities: []string{"completion"}}
	zoo         = []Candidate{qwenCoder7, codellama13, llama3b, llama8b, nomic, minilm, llava7, deepseekR1, mystery}
)

func names(rs []Ranked) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}

func TestRank(t *testing.T) {
	tables := Defaults()
	tests := []struct {
		name      string
		cands     []Candidate
		task      string
		role      string
		wantFirst string
		wantOnly  []string // if set, exactly these names in this order
		mustLack  []string
	}{
		{name: "coder model for code generation", cands: zoo, task: "code_generation", wantFirst: "qwen2.5-coder:7b", mustLack: []string{"nomic-embed-text:latest", "all-minilm:latest"}},
		{name: "coder model for code review", cands: zoo, task: "code_review", role: "reviewer", wantFirst: "qwen2.5-coder:7b"},
		{name: "no embedding model for chat", cands: zoo, task: "chat", wantFirst: "llama3.2:3b", mustLack: []string{"nomic-embed-text:latest", "all-minilm:latest"}},
		{name: "embedding needs the capability", cands: zoo, task: "embedding", wantOnly: []string{"all-minilm:latest", "nomic-embed-text:latest"}},
		{name: "vision needs the capability", cands: zoo, task: "vision", wantOnly: []string{"llava:7b"}},
		{name: "tool use needs tools", cands: zoo, task: "tool_use", wantOnly: []string{"llama3.2:3b", "llama3.1:8b", "qwen2.5-coder:7b"}},
		{name: "thinking model for reasoning", cands: zoo, task: "reasoning", wantFirst: "deepseek-r1:8b"},
		{name: "architect prefers thinking for chat", cands: zoo, task: "chat", role: "architect", wantFirst: "deepseek-r1:8b"},
		{name: "nothing qualifies", cands: []Candidate{nomic}, task: "chat", wantOnly: []string{}},
		{name: "no candidates", cands: nil, task: "chat", wantOnly: []string{}},
		// The documented trade-off (see Rank): 3B generic vs 13B coder.
		{name: "assistant: speed picks the 3B generic", cands: []Candidate{codellama13, llama3b}, task: "code_generation", role: "assistant", wantOnly: []string{"llama3.2:3b", "codellama:13b"}},
		{name: "no role: fit picks the 13B coder", cands: []Candidate{codellama13, llama3b}, task: "code_generation", wantOnly: []string{"codellama:13b", "llama3.2:3b"}},
		{name: "coder: the 13B coder", cands: []Candidate{codellama13, llama3b}, task: "code_generation", role: "coder", wantOnly: []string{"codellama:13b", "llama3.2:3b"}},
		{name: "architect: the 13B coder", cands: []Candidate{codellama13, llama3b}, task: "code_generation", role: "architect", wantOnly: []string{"codellama:13b", "llama3.2:3b"}},
		// Identical scores fall back to the name, whatever the input order.
		{name: "ties by name", cands: []Candidate{
			{Name: "b:7b", ParamsB: 7, Capabilities: []string{"completion"}},
			{Name: "a:7b", ParamsB: 7, Capabilities: []string{"completion"}},
		}, task: "chat", wantOnly: []string{"a:7b", "b:7b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tables.Rank(tt.cands, tt.task, tt.role)
			if err != nil {
				t.Fatalf("Rank: %v", err)
			}
			gotNames := names(got)
			if tt.wantOnly != nil {
				if strings.Join(gotNames, ",") != strings.Join(tt.wantOnly, ",") {
					t.Fatalf("got %v, want %v", gotNames, tt.wantOnly)
				}
			}
			if tt.wantFirst != "" && (len(got) == 0 || got[0].Name != tt.wantFirst) {
				t.Fatalf("first = %v, want %s (all: %v)", gotNames, tt.wantFirst, reasons(got))
			}
			for _, n := range tt.mustLack {
				for _, g := range gotNames {
					if g == n {
						t.Errorf("%s ranked for %s", n, tt.task)
					}
				}
			}
			for i, r := range got {
				if !strings.HasPrefix(r.Reason, r.Name+": ") || strings.Contains(r.Reason, "\n") {
					t.Errorf("reason %q: want one line starting with the name", r.Reason)
				}
				if i > 0 && got[i-1].Score < r.Score {
					t.Errorf("not sorted: %v", reasons(got))
				}
			}
		})
	}
}

func reasons(rs []Ranked) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Reason
	}
	return out
}

func TestRankReason(t *testing.T) {
	tests := []struct {
		cand       Candidate
		task, role string
		want       string
	}{
		{qwenCoder7, "code_generation", "", "qwen2.5-coder:7b: code model for code_generation, priority 8 (7.6B)"},
		{qwenCoder7, "code_generation", "coder", "qwen2.5-coder:7b: code model for code_generation as coder (coder likes code), priority 8 (7.6B)"},
		{qwenCoder7, "chat", "", "qwen2.5-coder:7b: code model, avoided for chat, priority 8 (7.6B)"},
		{llama3b, "chat", "", "llama3.2:3b: general model for chat, priority 10 (3.2B)"},
		{mystery, "chat", "", "mystery:latest: general model for chat, size unknown"},
	}
	for _, tt := range tests {
		got, err := Defaults().Rank([]Candidate{tt.cand}, tt.task, tt.role)
		if err != nil || len(got) != 1 {
			t.Fatalf("Rank(%s, %s, %s) = %v, %v", tt.cand.Name, tt.task, tt.role, got, err)
		}
		if got[0].Reason != tt.want {
			t.Errorf("reason = %q, want %q", got[0].Reason, tt.want)
		}
	}
}

func TestRankUnknown(t *testing.T) {
	tests := []struct {
		task, role string
		wantErr    error
		wantIn     []string
	}{
		{"poetry", "", ErrUnknownTask, []string{`"poetry"`, "chat", "code_generation", "embedding", "vision"}},
		{"chat", "poet", ErrUnknownRole, []string{`"poet"`, "architect", "assistant", `"" (none)`}},
	}
	for _, tt := range tests {
		_, err := Defaults().Rank(zoo, tt.task, tt.role)
		if !errors.Is(err, tt.wantErr) {
			t.Fatalf("Rank(%q, %q) err = %v, want %v", tt.task, tt.role, err, tt.wantErr)
		}
		for _, s := range tt.wantIn {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q lacks %s", err, s)
			}
		}
	}
}

func TestMerge(t *testing.T) {
	base := Defaults()
	merged := base.Merge(
		map[string]Task{
			"chat":        {Avoid: []string{}, SizeWeight: 0.3},
			"translation": {Prefer: []string{"aya"}},
		},
		map[string]Role{
			"assistant": {FitWeight: 2},
			"poet":      {Prefer: []string{"gemma"}},
		},
	)
	tests := []struct {
		name string
		ok   bool
	}{
		{"chat avoid cleared by empty list", len(merged.Tasks["chat"].Avoid) == 0 && merged.Tasks["chat"].Avoid != nil},
		{"chat size weight overridden", merged.Tasks["chat"].SizeWeight == 0.3},
		{"chat require kept", strings.Join(merged.Tasks["chat"].Require, ",") == "completion"},
		{"chat description kept", merged.Tasks["chat"].Description == base.Tasks["chat"].Description},
		{"new task added", merged.Tasks["translation"].Prefer[0] == "aya"},
		{"new task requires completion", strings.Join(merged.Tasks["translation"].Require, ",") == "completion"},
		{"new task neutral size weight", merged.Tasks["translation"].SizeWeight == 1},
		{"assistant fit overridden", merged.Roles["assistant"].FitWeight == 2},
		{"assistant size kept", merged.Roles["assistant"].SizeWeight == base.Roles["assistant"].SizeWeight},
		{"new role gets neutral weights", merged.Roles["poet"].SizeWeight == base.Roles[""].SizeWeight && merged.Roles["poet"].FitWeight == base.Roles[""].FitWeight},
		{"untouched task kept", merged.Tasks["vision"].Require[1] == "vision"},
		{"base not modified", len(base.Tasks["chat"].Avoid) == 1 && base.Tasks["chat"].SizeWeight == 1 && base.Tasks["translation"].Prefer == nil},
	}
	for _, tt := range tests {
		if !tt.ok {
			t.Errorf("%s: failed", tt.name)
		}
	}

	// Merge copies slices: changing the result leaves the source alone.
	merged.Tasks["vision"].Require[0] = "changed"
	if base.Tasks["vision"].Require[0] != "completion" {
		t.Error("Merge shares slices with its receiver")
	}

	// The merged tables rank with the new names.
	if _, err := merged.Rank(zoo, "translation", "poet"); err != nil {
		t.Errorf("Rank with merged names: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantSub string
	}{
		{"defaults ok", validateAll(Defaults()), ""},
		{"negative task weight", Task{SizeWeight: -1}.Validate(), "size_weight"},
		{"empty term", Task{Prefer: []string{"a", " "}}.Validate(), "prefer[1]"},
		{"NaN role weight", Role{FitWeight: math.NaN()}.Validate(), "fit_weight"},
	}
	for _, tt := range tests {
		if tt.wantSub == "" {
			if tt.err != nil {
				t.Errorf("%s: %v", tt.name, tt.err)
			}
			continue
		}
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.wantSub) {
			t.Errorf("%s: err = %v, want it to mention %s", tt.name, tt.err, tt.wantSub)
		}
	}
}

func validateAll(tb Tables) error {
	var errs []error
	for _, task := range tb.Tasks {
		errs = append(errs, task.Validate())
	}
	for _, r := range tb.Roles {
		errs = append(errs, r.Validate())
	}
	return errors.Join(errs...)
}
