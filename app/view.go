package app

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/describe"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// This file holds the pure functions from a manager snapshot to what the
// window, the tray and the notifications show. They have no Fyne in them so
// they can be table-tested.

// Row is one model in the window's table.
type Row struct {
	Name, Family, Params, Quant string
	// NumCtx is the context it loads at; Context is the selector's value:
	// DefaultContext ("Default (4096)") without a context of its own,
	// else "8192" or "auto". ContextChoices lists the choices.
	NumCtx         int
	Context        string
	DefaultContext string
	TrainedCtx     int // 0: unknown
	EstimateBytes  uint64
	Estimate       string // "4.6 GiB", "4.6 GiB (measured)", "?"
	Fits           bool   // at its context, in the budget
	FitsText       string // "fits" or "too big", and which card on a machine with several
	Priority       int
	// Status is loaded, loading, unloading, failed or idle, with what a
	// user needs to know beside it: "loaded · 38 % CPU", "failed · retry
	// at 15:04:05".
	Status         string
	LastUsed       time.Time
	LastUsedText   string
	Loaded, Pinned bool
	CPUPercent     int
	Error          string
	// Detail is the line shown for the selected row: the context it is
	// loaded at, the largest that fits now, the CPU share, the error.
	Detail string
}

// Column names the table's columns, in display order.
type Column int

const (
	ColName Column = iota
	ColFamily
	ColParams
	ColQuant
	ColContext
	ColEstimate
	ColFits
	ColPriority
	ColStatus
	ColLastUsed
	ColActions
	numColumns
)

var columnTitles = [numColumns]string{"Name", "Family", "Params", "Quant", "Context", "Est. VRAM", "Fits", "Priority", "Status", "Last used", ""}

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
	case ColContext:
		return r.Context
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
			Name: m.Name, Family: m.Family, Params: m.Parameters, Quant: m.Quantization, NumCtx: m.NumCtx,
			EstimateBytes: m.EstimateBytes, Fits: m.Fits, Priority: m.Priority,
			Status: describe.Status(s, m, now), LastUsed: m.LastUsed, LastUsedText: ago(now, m.LastUsed),
			Loaded: m.Loaded, Pinned: m.Pinned, CPUPercent: m.CPUPercent, Error: m.Error, Detail: Detail(m, now),
		}
		r.Context, r.DefaultContext = contextChoice(s, m)
		r.TrainedCtx = m.TrainedCtx
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
			r.FitsText = "fits" + describe.Placement(m) // on a machine with several cards: which one
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

// The context selector offers the model's default, powers of two from
// minContextChoice up to what the model was trained for (maxContextChoice,
// 128k, when the snapshot does not say), and "auto".
const (
	minContextChoice = 2048
	maxContextChoice = 1 << 17
	autoChoice       = "auto"
	defaultChoice    = "Default"
)

// contextChoice is a model's selector value and its default's label:
// "Default (N)" without a context of its own, else the tokens or "auto".
func contextChoice(s manager.Snapshot, m manager.ModelView) (cur, def string) {
	n, own := s.Settings.Contexts[m.Name]
	dflt := m.NumCtx // what it loads at without one: the global, capped
	if own || dflt == 0 {
		dflt = s.Settings.NumCtx
	}
	def = fmt.Sprintf("%s (%d)", defaultChoice, dflt)
	switch {
	case !own:
		return def, def
	case n == manager.ContextAuto:
		return autoChoice, def
	}
	return strconv.Itoa(n), def
}

// ContextChoices are the selector's choices: the default, the powers of
// two, the row's own context when it is none of them (written in the
// config file), and auto.
func (r Row) ContextChoices() []string {
	choices := []string{r.DefaultContext}
	ceiling := maxContextChoice
	if r.TrainedCtx >= minContextChoice {
		ceiling = r.TrainedCtx
	}
	for n := minContextChoice; n <= ceiling; n *= 2 {
		choices = append(choices, strconv.Itoa(n))
	}
	if !slices.Contains(choices, r.Context) && r.Context != autoChoice {
		choices = append(choices, r.Context)
	}
	return append(choices, autoChoice)
}

// ContextOf reads a selector value: 0 for the default, manager.ContextAuto
// for "auto", else the tokens.
func ContextOf(choice string) (int, error) {
	switch {
	case strings.HasPrefix(choice, defaultChoice):
		return 0, nil
	case choice == autoChoice:
		return manager.ContextAuto, nil
	}
	n, err := strconv.Atoi(choice)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("context %q: want a number of tokens, auto or the default", choice)
	}
	return n, nil
}

// Detail is what the window says about one model beyond its row: the
// context it loads at (and is loaded at), the largest context that fits
// the room now, the CPU share, and a failed load's error and retry time.
func Detail(m manager.ModelView, now time.Time) string {
	parts := []string{fmt.Sprintf("%s: context %s", m.Name, describe.Context(m))}
	if m.MaxFitCtx > 0 {
		parts = append(parts, fmt.Sprintf("fits now at up to %d tokens", m.MaxFitCtx))
	} else {
		parts = append(parts, "no context fits the room now")
	}
	if cpu := describe.CPU(m); cpu != "" {
		parts = append(parts, cpu+": Ollama could not fit it on the GPU, so it answers several times slower")
	}
	if w := describe.Warm(m); w != "" {
		parts = append(parts, fmt.Sprintf("%d %% of its files are in RAM (prefetched), so loading it reads little from disk", m.WarmPercent))
	}
	if m.Error != "" {
		e := "last error: " + m.Error
		if r := describe.Retry(m, now); r != "" {
			e += " (" + r + ")"
		}
		parts = append(parts, e)
	}
	return strings.Join(parts, "; ")
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
	case ColContext:
		return cmp.Compare(a.NumCtx, b.NumCtx)
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

// summary is the tray's status line: "VRAM 5.1 / 7.0 GiB · 2 models".
func summary(s manager.Snapshot) string {
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
	if s.Yielded {
		t += " · gave the GPU back"
	}
	return t
}

// Tooltip is the tray item's title and tooltip: the summary and a load in
// progress, "VRAM 5.1 / 7.0 GiB · 2 models · loading qwen2.5:7b (12 s)".
func Tooltip(s manager.Snapshot, now time.Time) string {
	t := summary(s)
	if l := describe.Loading(s, now); l != "" && s.OllamaUp {
		t += " · " + l
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
	ActYield
	ActRestore
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
// Give GPU back or Restore models, Pause/Resume, Open and Quit. Nothing in
// it changes by the second (the tooltip counts a load's seconds), so the
// menu is rebuilt only when the state changes.
func Menu(s manager.Snapshot, tasks []string) []MenuEntry {
	out := []MenuEntry{{Label: summary(s), Disabled: true}}
	loaded := s.LoadedModels()
	slices.SortFunc(loaded, func(a, b manager.ModelView) int { return strings.Compare(a.Name, b.Name) })
	for _, m := range loaded {
		size := m.SizeBytes
		if size == 0 {
			size = m.EstimateBytes
		}
		about := config.FormatBytes(size)
		if cpu := describe.CPU(m); cpu != "" {
			about += ", " + cpu
		}
		out = append(out, MenuEntry{
			Label:    fmt.Sprintf("%s (%s)", m.Name, about),
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
	best := MenuEntry{Label: "Load best for", Disabled: !s.OllamaUp || len(tasks) == 0 || s.Yielded}
	for _, t := range tasks {
		best.Children = append(best.Children, MenuEntry{Label: t, Action: Action{Kind: ActLoadBest, Task: t}})
	}
	out = append(out, best)
	if s.Yielded {
		label := "Restore models"
		if n := len(s.YieldedModels); n > 0 {
			label = fmt.Sprintf("Restore models (%d)", n)
		}
		out = append(out, MenuEntry{Label: label, Action: Action{Kind: ActRestore}, Disabled: !s.OllamaUp})
	} else {
		out = append(out, MenuEntry{Label: "Give GPU back", Action: Action{Kind: ActYield}, Disabled: !canGiveBack(s)})
	}
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

// Note is a desktop notification's text.
type Note struct{ Title, Content string }

// NoteFor returns the notification an event deserves, if any: evictions,
// failed loads (timeouts included), models given back to other programs
// and put back, a model partly on the CPU, a model Ollama unloaded on its
// own, Ollama going away or coming back, and a model downloaded. The text
// carries the manager's reason.
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
	case manager.EventYielded:
		c := "Unloaded " + e.Model
		if e.Reason != "" {
			c += ": " + e.Reason
		}
		return Note{"Gave the GPU back", c}, true
	case manager.EventRestored:
		c := "Restored " + e.Model
		if r := describe.RestoredReason(e.Reason); r != "" {
			c += ": " + r
		}
		return Note{"Model restored", c}, true
	case manager.EventSpilled:
		c := e.Reason
		if c == "" {
			c = e.Model + " is partly on the CPU and answers several times slower."
		}
		return Note{"Model partly on the CPU", c}, true
	case manager.EventUnloadedByOllama:
		c := e.Reason
		if c == "" {
			c = "Ollama unloaded " + e.Model + " on its own."
		}
		return Note{"Model unloaded by Ollama", c}, true
	case manager.EventOllamaDown:
		why := cmp.Or(e.Reason, "Ollama is unreachable")
		c := why + "; VRAM Keeper keeps retrying."
		if e.Error != "" {
			c = why + " (" + e.Error + "); VRAM Keeper keeps retrying."
		}
		return Note{"Ollama went away", c}, true
	case manager.EventOllamaUp:
		return Note{"Ollama is back", cmp.Or(e.Reason, "Ollama is reachable again") + "."}, true
	case manager.EventPulled:
		c := "Downloaded " + e.Model
		if e.Bytes > 0 {
			c += " (" + config.FormatBytes(e.Bytes) + ")"
		}
		return Note{"Model downloaded", c + "; it is ready to load."}, true
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
