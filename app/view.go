package app

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// This file holds the pure functions from a manager snapshot to what the
// window, the tray and the notifications show. They have no Fyne in them so
// they can be table-tested.

// Row is one model in the window's table.
type Row struct {
	Name, Family, Params, Quant string
	EstimateBytes               uint64
	Estimate                    string // "4.6 GiB", "4.6 GiB (measured)", "?"
	Fits                        bool
	FitsText                    string // "fits" or "too big"
	Priority                    int
	Status                      string // loaded, loading, unloading, failed, idle
	LastUsed                    time.Time
	LastUsedText                string
	Loaded, Pinned              bool
	Error                       string
}

// Column names the table's columns, in display order.
type Column int

const (
	ColName Column = iota
	ColFamily
	ColParams
	ColQuant
	ColEstimate
	ColFits
	ColPriority
	ColStatus
	ColLastUsed
	ColActions
	numColumns
)

var columnTitles = [numColumns]string{"Name", "Family", "Params", "Quant", "Est. VRAM", "Fits", "Priority", "Status", "Last used", ""}

// Title is the column's header text.
func (c Column) Title() string { return columnTitles[c] }

// Text is the cell text of a row in column c ("" for the actions column).
func (r Row) Text(c Column) string {
	switch c {
	case ColName:
		if r.Pinned {
			return "📌 " + r.Name
		}
		return r.Name
	case ColFamily:
		return r.Family
	case ColParams:
		return r.Params
	case ColQuant:
		return r.Quant
	case ColEstimate:
		return r.Estimate
	case ColFits:
		return r.FitsText
	case ColPriority:
		return fmt.Sprint(r.Priority)
	case ColStatus:
		return r.Status
	case ColLastUsed:
		return r.LastUsedText
	}
	return ""
}

// Sort says how the table is ordered.
type Sort struct {
	By   Column
	Desc bool
}

// Rows turns a snapshot into table rows: those whose name, family or
// quantization contain filter (case-insensitive), ordered by sort, ties by
// name.
func Rows(s manager.Snapshot, filter string, sort Sort, now time.Time) []Row {
	filter = strings.ToLower(strings.TrimSpace(filter))
	var out []Row
	for _, m := range s.Models {
		if filter != "" && !strings.Contains(strings.ToLower(m.Name+" "+m.Family+" "+m.Quantization), filter) {
			continue
		}
		r := Row{
			Name: m.Name, Family: m.Family, Params: m.Parameters, Quant: m.Quantization,
			EstimateBytes: m.EstimateBytes, Fits: m.Fits, Priority: m.Priority,
			Status: status(s, m), LastUsed: m.LastUsed, LastUsedText: ago(now, m.LastUsed),
			Loaded: m.Loaded, Pinned: m.Pinned, Error: m.Error,
		}
		switch {
		case m.EstimateBytes == 0:
			r.Estimate = "?"
		case m.Calibrated:
			r.Estimate = config.FormatBytes(m.EstimateBytes) + " (measured)"
		default:
			r.Estimate = config.FormatBytes(m.EstimateBytes)
		}
		r.FitsText = "too big"
		if m.Fits {
			r.FitsText = "fits"
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Row) int {
		c := compareBy(sort.By, a, b)
		if sort.Desc {
			c = -c
		}
		return cmp.Or(c, strings.Compare(a.Name, b.Name))
	})
	return out
}

func compareBy(c Column, a, b Row) int {
	switch c {
	case ColEstimate:
		return cmp.Compare(a.EstimateBytes, b.EstimateBytes)
	case ColFits:
		return compareBool(a.Fits, b.Fits)
	case ColPriority:
		return cmp.Compare(a.Priority, b.Priority)
	case ColLastUsed:
		return a.LastUsed.Compare(b.LastUsed)
	case ColParams, ColFamily, ColQuant, ColStatus:
		return strings.Compare(a.Text(c), b.Text(c))
	}
	return strings.Compare(a.Name, b.Name)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func status(s manager.Snapshot, m manager.ModelView) string {
	if s.Loading == m.Name {
		return string(manager.Loading)
	}
	if m.State == "" {
		return string(manager.Idle)
	}
	return string(m.State)
}

// ago renders a time as "never", "just now", "5 min ago", "3 h ago" or a
// date: the table is read at a glance.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return t.Format("2006-01-02")
}

// Tooltip is the tray item's title and tooltip: "VRAM 5.1 / 7.0 GiB · 2 models".
func Tooltip(s manager.Snapshot) string {
	if !s.OllamaUp {
		return "VRAM Keeper · Ollama unreachable"
	}
	n := len(s.LoadedModels())
	models := fmt.Sprintf("%d models", n)
	if n == 1 {
		models = "1 model"
	}
	t := fmt.Sprintf("VRAM %s · %s", usedOfBudget(s.Used, s.Budget), models)
	if s.Paused {
		t += " · paused"
	}
	return t
}

// usedOfBudget renders "5.1 / 7.0 GiB", both in the budget's unit.
func usedOfBudget(used, budget uint64) string {
	if budget < 1<<30 {
		return config.FormatBytes(used) + " / " + config.FormatBytes(budget)
	}
	return fmt.Sprintf("%.1f / %.1f GiB", float64(used)/(1<<30), float64(budget)/(1<<30))
}

// GaugeOf is the tray gauge for a snapshot.
func GaugeOf(s manager.Snapshot) Gauge {
	return Gauge{Used: s.Used, Others: s.Others, Budget: s.Budget, Total: s.VRAM.Total, Up: s.OllamaUp}
}

// ActionKind is what a menu item does.
type ActionKind int

const (
	ActNone ActionKind = iota
	ActUnload
	ActLoadBest
	ActPause
	ActResume
	ActOpen
	ActQuit
)

// Action is a menu item's effect: one manager call or a window action.
type Action struct {
	Kind  ActionKind
	Model string // ActUnload
	Task  string // ActLoadBest
}

// MenuEntry is one tray menu item as data, so the menu can be compared and
// tested without Fyne; a separator has Separator set and nothing else.
type MenuEntry struct {
	Label     string
	Action    Action
	Disabled  bool
	Separator bool
	Children  []MenuEntry
}

// Menu is the tray menu for a snapshot: a status line, each loaded model
// with its size and an Unload item, "Load best for" with one item per task,
// Pause/Resume, Open and Quit.
func Menu(s manager.Snapshot, tasks []string) []MenuEntry {
	out := []MenuEntry{{Label: Tooltip(s), Disabled: true}}
	loaded := s.LoadedModels()
	slices.SortFunc(loaded, func(a, b manager.ModelView) int { return strings.Compare(a.Name, b.Name) })
	for _, m := range loaded {
		size := m.SizeBytes
		if size == 0 {
			size = m.EstimateBytes
		}
		out = append(out, MenuEntry{
			Label:    fmt.Sprintf("%s (%s)", m.Name, config.FormatBytes(size)),
			Children: []MenuEntry{{Label: "Unload", Action: Action{Kind: ActUnload, Model: m.Name}}},
		})
	}
	if len(loaded) == 0 {
		out = append(out, MenuEntry{Label: "No models loaded", Disabled: true})
	}
	if s.Loading != "" {
		out = append(out, MenuEntry{Label: "Loading " + s.Loading + "…", Disabled: true})
	}
	out = append(out, MenuEntry{Separator: true})
	best := MenuEntry{Label: "Load best for", Disabled: !s.OllamaUp || len(tasks) == 0}
	for _, t := range tasks {
		best.Children = append(best.Children, MenuEntry{Label: t, Action: Action{Kind: ActLoadBest, Task: t}})
	}
	out = append(out, best)
	if s.Paused {
		out = append(out, MenuEntry{Label: "Resume auto-management", Action: Action{Kind: ActResume}})
	} else {
		out = append(out, MenuEntry{Label: "Pause auto-management", Action: Action{Kind: ActPause}})
	}
	out = append(out,
		MenuEntry{Separator: true},
		MenuEntry{Label: "Open VRAM Keeper", Action: Action{Kind: ActOpen}},
		MenuEntry{Label: "Quit", Action: Action{Kind: ActQuit}},
	)
	return out
}

// HistoryLine renders one history event for the History tab.
func HistoryLine(e manager.Event) string {
	var b strings.Builder
	b.WriteString(e.Time.Local().Format("2006-01-02 15:04:05"))
	b.WriteString("  ")
	switch e.Kind {
	case manager.EventLoaded:
		fmt.Fprintf(&b, "loaded %s", e.Model)
	case manager.EventUnloaded:
		fmt.Fprintf(&b, "unloaded %s", e.Model)
	case manager.EventEvicted:
		// The size is the evicted model's, so it goes next to its name,
		// not after the model it made room for.
		fmt.Fprintf(&b, "evicted %s", e.Model)
		if e.Bytes > 0 {
			fmt.Fprintf(&b, " (%s)", config.FormatBytes(e.Bytes))
		}
		if e.For != "" {
			fmt.Fprintf(&b, " for %s", e.For)
		}
	case manager.EventLoadFailed:
		fmt.Fprintf(&b, "failed to load %s", e.Model)
	case manager.EventOllamaDown:
		b.WriteString("Ollama went away")
	case manager.EventOllamaUp:
		b.WriteString("Ollama is back")
	default:
		fmt.Fprintf(&b, "%s %s", e.Kind, e.Model)
	}
	if e.Bytes > 0 && (e.Kind == manager.EventLoaded || e.Kind == manager.EventUnloaded) {
		fmt.Fprintf(&b, " (%s)", config.FormatBytes(e.Bytes))
	}
	// The manager's eviction reason ("unloaded A (4.6 GiB) to make room for
	// B (2.0 GiB)") restates the line; only a different reason adds news.
	redundant := e.Kind == manager.EventEvicted && strings.HasPrefix(e.Reason, "unloaded "+e.Model+" ")
	if e.Reason != "" && !redundant && e.Kind != manager.EventOllamaDown && e.Kind != manager.EventOllamaUp {
		b.WriteString(" — " + e.Reason)
	}
	if e.Error != "" {
		b.WriteString(": " + e.Error)
	}
	return b.String()
}

// Note is a desktop notification's text.
type Note struct{ Title, Content string }

// NoteFor returns the notification an event deserves, if any: evictions,
// failed loads, and Ollama going away or coming back.
func NoteFor(e manager.Event) (Note, bool) {
	switch e.Kind {
	case manager.EventEvicted:
		c := "Unloaded " + e.Model
		if e.Bytes > 0 {
			c += " (" + config.FormatBytes(e.Bytes) + ")"
		}
		if e.For != "" {
			c += " to make room for " + e.For
		} else if e.Reason != "" {
			c += ": " + e.Reason
		}
		return Note{"Model evicted", c}, true
	case manager.EventLoadFailed:
		c := "Could not load " + e.Model
		if e.Error != "" {
			c += ": " + e.Error
		}
		return Note{"Load failed", c}, true
	case manager.EventOllamaDown:
		c := "Ollama is unreachable; VRAM Keeper keeps retrying."
		if e.Error != "" {
			c = "Ollama is unreachable (" + e.Error + "); VRAM Keeper keeps retrying."
		}
		return Note{"Ollama went away", c}, true
	case manager.EventOllamaUp:
		return Note{"Ollama is back", "Ollama is reachable again."}, true
	}
	return Note{}, false
}

// noteFilter drops notifications the user has already had: the same event
// delivered twice, and Ollama up/down that does not change what was last
// said. It is only used from the event goroutine.
type noteFilter struct {
	seen     map[string]bool
	order    []string
	lastUp   *bool
	capacity int
}

func (f *noteFilter) allow(e manager.Event) bool {
	switch e.Kind {
	case manager.EventOllamaDown, manager.EventOllamaUp:
		up := e.Kind == manager.EventOllamaUp
		if f.lastUp == nil && up {
			// Ollama being up at start is not news.
			f.lastUp = &up
			return false
		}
		if f.lastUp != nil && *f.lastUp == up {
			return false
		}
		f.lastUp = &up
		return true
	}
	key := fmt.Sprintf("%s|%s|%s|%d", e.Kind, e.Model, e.For, e.Time.UnixNano())
	if f.seen == nil {
		f.seen = map[string]bool{}
		f.capacity = max(f.capacity, 256)
	}
	if f.seen[key] {
		return false
	}
	f.seen[key] = true
	f.order = append(f.order, key)
	if len(f.order) > f.capacity {
		delete(f.seen, f.order[0])
		f.order = f.order[1:]
	}
	return true
}
