package app

import (
	"reflect"
	"strings"
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
		{"gemma3:27b", "gemma3", "27.4B", "Q4_K_M", "17.0 GiB", "too big", "3", "idle", "never"},
		{"llama3.2:3b", "llama", "3.2B", "Q4_K_M", "2.5 GiB", "fits", "5", "loading", "5 min ago"},
		{"qwen2.5:7b", "qwen2", "7.6B", "Q4_K_M", "4.6 GiB (measured)", "fits", "7", "loaded", "just now"},
	}
	for i, r := range rows {
		for c := ColName; c < ColActions; c++ {
			if got := r.Text(c); got != want[i][c] {
				t.Errorf("row %d %s = %q, want %q", i, c.Title(), got, want[i][c])
			}
		}
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s
			c.Models = append([]manager.ModelView(nil), s.Models...)
			tt.mod(&c)
			if got := Tooltip(c); got != tt.want {
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
	tests := []struct {
		name string
		s    manager.Snapshot
		want []string
	}{
		{"loaded model", up, []string{
			"VRAM 4.6 / 7.0 GiB · 1 model (disabled)",
			"qwen2.5:7b (4.6 GiB)", "  Unload",
			"---",
			"Load best for", "  chat", "  code_generation",
			"Pause auto-management",
			"---", "Open VRAM Keeper", "Quit",
		}},
		{"ollama down", down, []string{
			"VRAM Keeper · Ollama unreachable (disabled)",
			"No models loaded (disabled)",
			"---",
			"Load best for (disabled)", "  chat", "  code_generation",
			"Pause auto-management",
			"---", "Open VRAM Keeper", "Quit",
		}},
		{"paused", paused, []string{
			"VRAM 4.6 / 7.0 GiB · 1 model · paused (disabled)",
			"qwen2.5:7b (4.6 GiB)", "  Unload",
			"---",
			"Load best for", "  chat", "  code_generation",
			"Resume auto-management",
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
		{manager.Event{Kind: manager.EventOllamaUp}, Note{"Ollama is back", "Ollama is reachable again."}, true},
		{manager.Event{Kind: manager.EventLoaded, Model: "x"}, Note{}, false},
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

func TestHistoryLine(t *testing.T) {
	e := manager.Event{Time: time.Date(2026, 1, 2, 12, 0, 0, 0, time.Local), Kind: manager.EventEvicted,
		Model: "qwen2.5:7b", For: "llama3.2:3b", Bytes: 46 * gib / 10, Reason: "max loaded reached"}
	want := "2026-01-02 12:00:00  evicted qwen2.5:7b (4.6 GiB) for llama3.2:3b — max loaded reached"
	if got := HistoryLine(e); got != want {
		t.Errorf("HistoryLine = %q, want %q", got, want)
	}
	// The manager's own eviction reason only repeats the line.
	e.Reason = "unloaded qwen2.5:7b (4.6 GiB) to make room for llama3.2:3b (2.0 GiB)"
	want = "2026-01-02 12:00:00  evicted qwen2.5:7b (4.6 GiB) for llama3.2:3b"
	if got := HistoryLine(e); got != want {
		t.Errorf("HistoryLine = %q, want %q", got, want)
	}
}

func TestAutostartEntry(t *testing.T) {
	got := autostartEntry("/opt/VRAM Keeper/vramkeeper")
	want := "Exec=\"/opt/VRAM Keeper/vramkeeper\" --hidden\n"
	if !strings.Contains(got, want) || !strings.Contains(got, "[Desktop Entry]\n") {
		t.Errorf("entry:\n%s", got)
	}
}
