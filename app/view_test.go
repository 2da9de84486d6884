package app

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
)

func TestRows(t *testing.T) {
	s := testSnapshot()
	now := s.Time
	tests := []struct {
		name   string
		filter string
		sort   Sort
		want   []string // names in order
	}{
		{"by name", "", Sort{By: ColName}, []string{"gemma3:27b", "llama3.2:3b", "qwen2.5:7b"}},
		{"by estimate desc", "", Sort{By: ColEstimate, Desc: true}, []string{"gemma3:27b", "qwen2.5:7b", "llama3.2:3b"}},
		{"by priority", "", Sort{By: ColPriority}, []string{"gemma3:27b", "llama3.2:3b", "qwen2.5:7b"}},
		{"by last used desc", "", Sort{By: ColLastUsed, Desc: true}, []string{"qwen2.5:7b", "llama3.2:3b", "gemma3:27b"}},
		{"filter family", "QWEN", Sort{}, []string{"qwen2.5:7b"}},
		{"filter none", "mistral", Sort{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range Rows(s, tt.filter, tt.sort, now) {
				got = append(got, r.Name)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("order = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRowCells(t *testing.T) {
	s := testSnapshot()
	s.Loading = "llama3.2:3b"
	rows := Rows(s, "", Sort{By: ColName}, s.Time)
	want := [][]string{
		{"gemma3:27b", "gemma3", "27.4B", "Q4_K_M", "Default (4096)", "17.0 GiB", "too big", "3", "idle", "never"},
		{"llama3.2:3b", "llama", "3.2B", "Q4_K_M", "Default (4096)", "2.5 GiB", "fits", "5", "loading", "5 min ago"},
		{"qwen2.5:7b", "qwen2", "7.6B", "Q4_K_M", "Default (4096)", "4.6 GiB (measured)", "fits", "7", "loaded", "just now"},
	}
	for i, r := range rows {
		for c := ColName; c < ColActions; c++ {
			if got := r.Text(c); got != want[i][c] {
				t.Errorf("row %d %s = %q, want %q", i, c.Title(), got, want[i][c])
			}
		}
	}
}

// On a machine with several cards the Fits column says where Ollama would
// put the model.
func TestRowFitsOnWhichCard(t *testing.T) {
	s := testSnapshot()
	for i := range s.Models {
		switch s.Models[i].Name {
		case "llama3.2:3b":
			s.Models[i].Card, s.Models[i].CardCount = "AMD Radeon RX 6700 XT", 1
		case "gemma3:27b", "qwen2.5:7b":
			s.Models[i].CardCount = 2
		}
	}
	got := map[string]string{}
	for _, r := range Rows(s, "", Sort{By: ColName}, s.Time) {
		got[r.Name] = r.Text(ColFits)
	}
	want := map[string]string{"gemma3:27b": "too big", "llama3.2:3b": "fits on AMD Radeon RX 6700 XT", "qwen2.5:7b": "fits over 2 cards"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fits = %v, want %v", got, want)
	}
}

func TestTooltip(t *testing.T) {
	s := testSnapshot()
	tests := []struct {
		name string
		mod  func(*manager.Snapshot)
		want string
	}{
		{"one model", func(*manager.Snapshot) {}, "VRAM 4.6 / 7.0 GiB · 1 model"},
		{"two models", func(s *manager.Snapshot) {
			s.Models[1].Loaded = true
			s.Used = 51 * gib / 10
		}, "VRAM 5.1 / 7.0 GiB · 2 models"},
		{"paused", func(s *manager.Snapshot) { s.Paused = true }, "VRAM 4.6 / 7.0 GiB · 1 model · paused"},
		{"down", func(s *manager.Snapshot) { s.OllamaUp = false }, "VRAM Keeper · Ollama unreachable"},
		{"small budget", func(s *manager.Snapshot) {
			s.Budget, s.Used = 512<<20, 100<<20
		}, "VRAM 100 MiB / 512 MiB · 1 model"},
		{"loading", func(s *manager.Snapshot) {
			s.Loading, s.LoadingSince = "llama3.2:3b", s.Time.Add(-12*time.Second)
		}, "VRAM 4.6 / 7.0 GiB · 1 model · loading llama3.2:3b (12 s)"},
		{"given back", func(s *manager.Snapshot) {
			s.Models[2].Loaded, s.Used, s.Yielded, s.YieldedModels = false, 0, true, []string{"qwen2.5:7b"}
		}, "VRAM 0.0 / 7.0 GiB · 0 models · gave the GPU back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s
			c.Models = append([]manager.ModelView(nil), s.Models...)
			tt.mod(&c)
			if got := Tooltip(c, s.Time); got != tt.want {
				t.Errorf("Tooltip = %q, want %q", got, tt.want)
			}
		})
	}
}

// labels flattens a menu to "label" / "  child" lines for comparison.
func labels(m []MenuEntry, indent string) []string {
	var out []string
	for _, e := range m {
		if e.Separator {
			out = append(out, indent+"---")
			continue
		}
		l := indent + e.Label
		if e.Disabled {
			l += " (disabled)"
		}
		out = append(out, l)
		out = append(out, labels(e.Children, indent+"  ")...)
	}
	return out
}

func TestMenu(t *testing.T) {
	tasks := []string{"chat", "code_generation"}
	up := testSnapshot()
	down := testSnapshot()
	down.OllamaUp = false
	down.Models[2].Loaded, down.Models[2].State, down.Used = false, manager.Idle, 0
	paused := testSnapshot()
	paused.Paused = true
	spilled := testSnapshot()
	spilled.Models = append([]manager.ModelView(nil), spilled.Models...)
	spilled.Models[2].CPUPercent = 38
	spilled.Loading, spilled.LoadingSince = "llama3.2:3b", spilled.Time.Add(-12*time.Second)
	yielded := testSnapshot()
	yielded.Models = append([]manager.ModelView(nil), yielded.Models...)
	yielded.Models[2].Loaded, yielded.Models[2].State, yielded.Used = false, manager.Idle, 0
	yielded.Yielded, yielded.YieldedModels = true, []string{"qwen2.5:7b"}
	empty := testSnapshot()
	empty.Models = append([]manager.ModelView(nil), empty.Models...)
	empty.Models[2].Loaded, empty.Models[2].State, empty.Used = false, manager.Idle, 0
	tests := []struct {
		name string
		s    manager.Snapshot
		want []string
	}{
		// Give GPU back would do nothing.
		{"nothing loaded", empty, []string{
			"VRAM 0.0 / 7.0 GiB · 0 models (disabled)",
			"No models loaded (disabled)",
			"---",
			"Load best for", "  chat", "  code_generation",
			"Give GPU back (disabled)",
			"Pause auto-management",
			"---", "Open VRAM Keeper", "Quit",
		}},
		{"loaded model", up, []string{
			"VRAM 4.6 / 7.0 GiB · 1 model (disabled)",
			"qwen2.5:7b (4.6 GiB)", "  Unload",
			"---",
			"Load best for", "  chat", "  code_generation",
			"Give GPU back",
			"Pause auto-management",
			"---", "Open VRAM Keeper", "Quit",
		}},
		{"ollama down", down, []string{
			"VRAM Keeper · Ollama unreachable (disabled)",
			"No models loaded (disabled)",
			"---",
			"Load best for (disabled)", "  chat", "  code_generation",
			"Give GPU back (disabled)",
			"Pause auto-management",
			"---", "Open VRAM Keeper", "Quit",
		}},
		{"paused", paused, []string{
			"VRAM 4.6 / 7.0 GiB · 1 model · paused (disabled)",
			"qwen2.5:7b (4.6 GiB)", "  Unload",
			"---",
			"Load best for", "  chat", "  code_generation",
			"Give GPU back",
			"Resume auto-management",
			"---", "Open VRAM Keeper", "Quit",
		}},
		// No seconds in the menu: it would be rebuilt every poll.
		{"spilled, and a load running", spilled, []string{
			"VRAM 4.6 / 7.0 GiB · 1 model (disabled)",
			"qwen2.5:7b (4.6 GiB, 38 % on CPU)", "  Unload",
			"Loading llama3.2:3b… (disabled)",
			"---",
			"Load best for", "  chat", "  code_generation",
			"Give GPU back",
			"Pause auto-management",
			"---", "Open VRAM Keeper", "Quit",
		}},
		{"given back", yielded, []string{
			"VRAM 0.0 / 7.0 GiB · 0 models · gave the GPU back (disabled)",
			"No models loaded (disabled)",
			"---",
			"Load best for (disabled)", "  chat", "  code_generation",
			"Restore models (1)",
			"Pause auto-management",
			"---", "Open VRAM Keeper", "Quit",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Menu(tt.s, tasks)
			if got := labels(m, ""); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("menu =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	m := Menu(up, tasks)
	if a := m[1].Children[0].Action; a != (Action{Kind: ActUnload, Model: "qwen2.5:7b"}) {
		t.Errorf("Unload action = %+v", a)
	}
	if a := m[3].Children[1].Action; a != (Action{Kind: ActLoadBest, Task: "code_generation"}) {
		t.Errorf("Load best action = %+v", a)
	}
	if a := m[4].Action; a.Kind != ActYield {
		t.Errorf("Give GPU back action = %+v", a)
	}
	if a := Menu(yielded, tasks)[4].Action; a.Kind != ActRestore {
		t.Errorf("Restore models action = %+v", a)
	}
}

func TestNoteFor(t *testing.T) {
	tests := []struct {
		e    manager.Event
		want Note
		ok   bool
	}{
		{manager.Event{Kind: manager.EventEvicted, Model: "qwen2.5:7b", For: "llama3.2:3b", Bytes: 46 * gib / 10},
			Note{"Model evicted", "Unloaded qwen2.5:7b (4.6 GiB) to make room for llama3.2:3b"}, true},
		{manager.Event{Kind: manager.EventLoadFailed, Model: "x:1b", Error: "out of memory"},
			Note{"Load failed", "Could not load x:1b: out of memory"}, true},
		{manager.Event{Kind: manager.EventLoadFailed, Model: "x:1b", Error: "x:1b did not load within 10s (load_timeout), so the request was cancelled: timed out"},
			Note{"Load failed", "Could not load x:1b: x:1b did not load within 10s (load_timeout), so the request was cancelled: timed out"}, true},
		{manager.Event{Kind: manager.EventYielded, Model: "qwen2.5-coder:7b", Reason: "other programs need 3.1 GiB of the card"},
			Note{"Gave the GPU back", "Unloaded qwen2.5-coder:7b: other programs need 3.1 GiB of the card"}, true},
		{manager.Event{Kind: manager.EventRestored, Model: "qwen2.5-coder:7b", Reason: "restored: other programs released the memory"},
			Note{"Model restored", "Restored qwen2.5-coder:7b: other programs released the memory"}, true},
		{manager.Event{Kind: manager.EventSpilled, Model: "big:14b", Reason: "big:14b is 38 % on the CPU: Ollama could not fit it on the GPU"},
			Note{"Model partly on the CPU", "big:14b is 38 % on the CPU: Ollama could not fit it on the GPU"}, true},
		{manager.Event{Kind: manager.EventUnloadedByOllama, Model: "m", Reason: "Ollama unloaded m on its own (ollama stop)"},
			Note{"Model unloaded by Ollama", "Ollama unloaded m on its own (ollama stop)"}, true},
		{manager.Event{Kind: manager.EventOllamaUp}, Note{"Ollama is back", "Ollama is reachable again."}, true},
		{manager.Event{Kind: manager.EventOllamaUp, Reason: "Ollama answers now"}, Note{"Ollama is back", "Ollama answers now."}, true},
		{manager.Event{Kind: manager.EventPulled, Model: "llama3.2:3b", Bytes: 2 * gib}, Note{"Model downloaded", "Downloaded llama3.2:3b (2.0 GiB); it is ready to load."}, true},
		{manager.Event{Kind: manager.EventLoaded, Model: "x"}, Note{}, false},
		{manager.Event{Kind: manager.EventLoadStarted, Model: "x"}, Note{}, false},
		{manager.Event{Kind: manager.EventVRAM}, Note{}, false},
	}
	for _, tt := range tests {
		got, ok := NoteFor(tt.e)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NoteFor(%v) = %+v %v, want %+v %v", tt.e.Kind, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNoteFilter(t *testing.T) {
	t0 := time.Unix(100, 0)
	ev := manager.Event{Time: t0, Kind: manager.EventEvicted, Model: "a"}
	seq := []struct {
		e    manager.Event
		want bool
	}{
		{manager.Event{Kind: manager.EventOllamaUp}, false}, // up at start is not news
		{ev, true},
		{ev, false}, // the same event again
		{manager.Event{Time: t0.Add(time.Second), Kind: manager.EventEvicted, Model: "a"}, true},
		{manager.Event{Kind: manager.EventOllamaDown}, true},
		{manager.Event{Kind: manager.EventOllamaDown}, false},
		{manager.Event{Kind: manager.EventOllamaUp}, true},
		{manager.Event{Kind: manager.EventOllamaUp}, false},
	}
	var f noteFilter
	for i, s := range seq {
		if got := f.allow(s.e); got != s.want {
			t.Errorf("step %d (%s): allow = %v, want %v", i, s.e.Kind, got, s.want)
		}
	}
}

// A row says what a user needs beside the state: the CPU share, when a
// failed model is tried again, the context selector's value, and the
// detail line.
func TestRowWords(t *testing.T) {
	s := testSnapshot()
	now := s.Time
	s.Settings.Contexts = map[string]int{"qwen2.5:7b": 16384, "llama3.2:3b": manager.ContextAuto}
	s.Models = append([]manager.ModelView(nil), s.Models...)
	s.Models[0].State, s.Models[0].Error, s.Models[0].RetryAt = manager.Failed, "out of memory", now.Add(time.Minute)
	s.Models[0].NumCtx = 8192
	s.Models[1].ContextAuto, s.Models[1].NumCtx, s.Models[1].MaxFitCtx = true, 4096, 32768
	s.Models[2].NumCtx, s.Models[2].LoadedCtx, s.Models[2].CPUPercent, s.Models[2].MaxFitCtx = 16384, 16384, 38, 16384
	retry := now.Add(time.Minute).Local().Format("15:04:05")
	for _, tc := range []struct {
		name, context, status, detail string
	}{
		{"gemma3:27b", "Default (8192)", "failed · retry at " + retry,
			"gemma3:27b: context 8192; no context fits the room now; last error: out of memory (retry at " + retry + ")"},
		{"llama3.2:3b", "auto", "idle", "llama3.2:3b: context auto; fits now at up to 32768 tokens"},
		{"qwen2.5:7b", "16384", "loaded · 38 % on CPU",
			"qwen2.5:7b: context 16384; fits now at up to 16384 tokens; 38 % on CPU: Ollama could not fit it on the GPU, so it answers several times slower"},
	} {
		i := slices.IndexFunc(Rows(s, "", Sort{}, now), func(r Row) bool { return r.Name == tc.name })
		r := Rows(s, "", Sort{}, now)[i]
		if r.Context != tc.context || r.Status != tc.status || r.Detail != tc.detail {
			t.Errorf("%s: context %q status %q detail %q\nwant %q %q %q", tc.name, r.Context, r.Status, r.Detail, tc.context, tc.status, tc.detail)
		}
		if ch := r.ContextChoices(); ch[0] != r.DefaultContext || ch[len(ch)-1] != "auto" || !slices.Contains(ch, r.Context) {
			t.Errorf("%s: choices %v lack the default first, auto last or %q", tc.name, ch, r.Context)
		}
	}
}

func TestContextChoices(t *testing.T) {
	r := Row{Context: "3000", DefaultContext: "Default (4096)"}
	want := []string{"Default (4096)", "2048", "4096", "8192", "16384", "32768", "65536", "131072", "3000", "auto"}
	if got := r.ContextChoices(); !reflect.DeepEqual(got, want) {
		t.Errorf("choices %v, want %v", got, want)
	}
	for _, tc := range []struct {
		in   string
		want int
		err  bool
	}{
		{"Default (4096)", 0, false}, {"auto", manager.ContextAuto, false}, {"16384", 16384, false},
		{"lots", 0, true}, {"-5", 0, true}, {"0", 0, true},
	} {
		got, err := ContextOf(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ContextOf(%q) = %d, %v", tc.in, got, err)
		}
	}
}
