package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/vramkeeper/vramkeeper/internal/library"
	"github.com/vramkeeper/vramkeeper/internal/transfer"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/estimate"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// Getting models from the window: with none installed, the Models tab
// offers well-known models of Ollama's library with what each needs on
// this card, and a field for any other name; "Get models…" shows the same
// later. A pull runs through the Keeper (Ollama's /api/pull), with its
// progress and a Cancel button in the header, one at a time.

// Suggestion is one row of the models offered for download.
type Suggestion struct {
	Name, For string
	// Download is the download size; Need what the estimator says the
	// model takes on the card at the default context.
	Download, Need string
	NeedBytes      uint64
	Fits           bool
	Installed      bool
}

// Suggestions are the library's models for this snapshot's card and
// budget: what each needs at the default context (needs, by name; missing
// is unknown) and whether it fits the budget; the ones that fit first,
// each group in the library's order.
func Suggestions(s manager.Snapshot, models []library.Model, needs map[string]uint64) []Suggestion {
	var fit, big []Suggestion
	for _, m := range models {
		r := Suggestion{Name: m.Name, For: m.For, Download: decimalSize(m.DownloadBytes), Need: "?"}
		if n, ok := needs[m.Name]; ok {
			r.NeedBytes, r.Need = n, config.FormatBytes(n)
			r.Fits = s.Budget > 0 && n <= s.Budget
		}
		_, r.Installed = s.Lookup(m.Name)
		if r.Fits {
			fit = append(fit, r)
		} else {
			big = append(big, r)
		}
	}
	return append(fit, big...)
}

// FitsText is a suggestion's fit column.
func (r Suggestion) FitsText() string {
	switch {
	case r.Installed:
		return "installed"
	case r.Fits:
		return "fits"
	case r.Need == "?":
		return "?"
	}
	return "does not fit"
}

// decimalSize writes a download size as ollama.com does: "398 MB",
// "2.0 GB".
func decimalSize(b uint64) string {
	if b >= 1e9 {
		return fmt.Sprintf("%.1f GB", float64(b)/1e9)
	}
	return fmt.Sprintf("%d MB", (b+5e5)/1e6)
}

// localRegistry reports whether a model name points at a registry on this
// machine ("127.0.0.1:5000/team/model"), which serves plain HTTP: the
// window pulls from it as `pull --insecure` does.
func localRegistry(name string) bool {
	host, _, ok := strings.Cut(name, "/")
	if !ok || !strings.ContainsAny(host, ".:") {
		return false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// EmptyText says what to do with no models installed, or "" when there
// are some (or the list is not known yet).
func EmptyText(s manager.Snapshot) string {
	if !s.OllamaUp || !s.Discovered || len(s.Models) > 0 {
		return ""
	}
	return fmt.Sprintf("Ollama is running, with no models yet. Download one: each is marked by whether it fits your budget of %s at %d tokens.",
		config.FormatBytes(s.Budget), s.Settings.NumCtx)
}

// suggestTitles and suggestWidths are the offer table's columns.
var suggestTitles = []string{"Model", "For", "Download", "Needs", "Fits", ""}

var suggestWidths = []float32{190, 90, 90, 100, 110, 110}

// getModels is the offer: the table of suggestions, the name field, and
// the pull under way.
type getModels struct {
	u *ui

	panel *fyne.Container
	intro *widget.Label
	table *widget.Table
	rows  []Suggestion
	name  *widget.Entry
	get   *widget.Button
	back  *widget.Button
	asked bool // "Get models…" was pressed
	// couldPull is what the table's Download buttons last showed.
	couldPull bool
	needKey   string
	needs     map[string]uint64

	// The pull under way, shown in the header.
	progress *fyne.Container
	line     *widget.Label
	bar      *widget.ProgressBar
	cancelB  *widget.Button
	pulling  string
	cancel   context.CancelFunc
	meter    transfer.Meter
}

func newGetModels(u *ui) *getModels {
	g := &getModels{u: u}
	g.intro = widget.NewLabel("")
	g.intro.Wrapping = fyne.TextWrapWord
	g.table = widget.NewTable(
		func() (int, int) { return len(g.rows), len(suggestTitles) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Truncation = fyne.TextTruncateEllipsis
			return container.NewStack(l, newRowButton("Download"))
		},
		func(id widget.TableCellID, o fyne.CanvasObject) {
			if id.Row >= 0 && id.Row < len(g.rows) {
				g.updateCell(g.rows[id.Row], id.Col, o.(*fyne.Container))
			}
		},
	)
	g.table.ShowHeaderRow = true
	g.table.CreateHeader = func() fyne.CanvasObject { return widget.NewLabel("") }
	g.table.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		o.(*widget.Label).SetText(suggestTitles[id.Col])
	}
	for i, w := range suggestWidths {
		g.table.SetColumnWidth(i, w)
	}
	g.name = widget.NewEntry()
	g.name.SetPlaceHolder("Or type any name from ollama.com/library, e.g. gemma3:4b")
	g.name.OnChanged = func(string) { g.refreshButtons() }
	g.name.OnSubmitted = func(s string) { g.pull(s) }
	g.get = widget.NewButton("Download", func() { g.pull(g.name.Text) })
	g.get.Importance = widget.HighImportance
	g.back = widget.NewButton("Back to my models", func() { g.asked = false; u.showModels() })
	g.panel = container.NewBorder(container.NewBorder(nil, nil, nil, g.back, g.intro),
		container.NewBorder(nil, nil, nil, g.get, g.name), nil, nil, g.table)

	g.line = widget.NewLabel("")
	g.bar = widget.NewProgressBar()
	g.cancelB = widget.NewButton("Cancel", g.stop)
	g.progress = container.NewBorder(nil, nil, g.line, g.cancelB, g.bar)
	g.progress.Hide()
	return g
}

func (g *getModels) updateCell(r Suggestion, col int, cell *fyne.Container) {
	label, b := cell.Objects[0].(*widget.Label), cell.Objects[1].(*rowButton)
	if col == len(suggestTitles)-1 {
		label.Hide()
		b.Show()
		b.Model = r.Name
		name := r.Name
		b.OnTapped = func() { g.pull(name) }
		setEnabled(b, g.canPull() && !r.Installed)
		return
	}
	b.Hide()
	text := []string{r.Name, r.For, r.Download, r.Need, r.FitsText()}[col]
	imp := widget.MediumImportance
	if col == 4 && !r.Fits && !r.Installed {
		imp = widget.DangerImportance
	}
	if label.Text != text || label.Importance != imp {
		label.Text, label.Importance = text, imp
		label.Refresh()
	}
	label.Show()
}

// visible says whether the offer replaces the table: asked for, or no
// models to show.
func (g *getModels) visible() bool {
	return g.asked || EmptyText(g.u.snap) != ""
}

// update follows a snapshot: what each model needs (redone only when the
// default context or the server changes), what is installed, the intro.
func (g *getModels) update(s manager.Snapshot) {
	if !g.visible() {
		g.refreshButtons()
		return
	}
	key := fmt.Sprintf("%d|%s", s.Settings.NumCtx, s.Version)
	if key != g.needKey {
		g.needs = map[string]uint64{}
		for _, m := range library.Models() {
			if n, err := m.Need(s.Settings.NumCtx, estimate.ParseGeneration(s.Version)); err == nil {
				g.needs[m.Name] = n
			}
		}
		g.needKey = key
	}
	intro := EmptyText(s)
	if intro == "" {
		intro = fmt.Sprintf("Download a model: each is marked by whether it fits your budget of %s at %d tokens.",
			config.FormatBytes(s.Budget), s.Settings.NumCtx)
	}
	setText(g.intro, intro)
	showIf(g.back, len(s.Models) > 0)
	rows := Suggestions(s, library.Models(), g.needs)
	if !slicesEqual(rows, g.rows) {
		g.rows = rows
		g.table.Refresh()
	}
	g.refreshButtons()
}

func slicesEqual(a, b []Suggestion) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// canPull: Ollama answers and no pull runs; a Download would do nothing
// otherwise.
func (g *getModels) canPull() bool { return g.u.snap.OllamaUp && g.pulling == "" }

// refreshButtons enables the Download buttons that would do something;
// the table is redrawn only when that changes.
func (g *getModels) refreshButtons() {
	can := g.canPull()
	if can && strings.TrimSpace(g.name.Text) != "" {
		g.get.Enable()
	} else {
		g.get.Disable()
	}
	if can != g.couldPull {
		g.couldPull = can
		g.table.Refresh()
	}
}

// pull starts downloading name, unless a pull runs.
func (g *getModels) pull(name string) {
	name = strings.TrimSpace(name)
	if name == "" || !g.canPull() {
		return
	}
	u := g.u
	ctx, cancel := context.WithCancel(u.ctx)
	g.pulling, g.cancel, g.meter = name, cancel, transfer.Meter{}
	g.showProgress()
	g.progress.Show()
	g.refreshButtons()
	if u.gov != nil {
		u.gov.setBusy(true)
	}
	u.setStatus("")
	req := serving.PullRequest{Name: name, Insecure: localRegistry(name)}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer cancel()
		err := u.keeper.Pull(ctx, req, func(p serving.PullProgress) {
			now := u.now()
			fyne.Do(func() {
				if g.pulling == name {
					g.meter.Add(p, now)
					g.showProgress()
				}
			})
		})
		if err != nil && u.ctx.Err() != nil {
			return // quitting
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			u.log.Warn("pull failed", "model", name, "err", err)
		}
		fyne.Do(func() { g.done(name, err) })
	}()
}

func (g *getModels) showProgress() {
	setText(g.line, "Downloading "+g.pulling+": "+g.meter.Line())
	g.bar.SetValue(g.meter.Fraction())
}

// stop cancels the pull under way: Ollama stops, nothing is installed.
func (g *getModels) stop() {
	if g.cancel != nil {
		g.cancel()
	}
}

// done ends a pull: the table shows the model, or the status says why
// not.
func (g *getModels) done(name string, err error) {
	u := g.u
	g.pulling, g.cancel = "", nil
	g.progress.Hide()
	switch {
	case errors.Is(err, context.Canceled):
		u.setStatus("Stopped downloading " + name + "; nothing was installed.")
	case errors.Is(err, manager.ErrModelUnknown):
		u.setStatus(fmt.Sprintf("Ollama's library has no model %s: check the name at ollama.com/library. (%v)", name, err))
	case err != nil:
		u.setStatus(fmt.Sprintf("Could not download %s: %v", name, err))
	default:
		g.asked = false
		g.name.SetText("")
		u.setStatus("Downloaded " + name + ". Load it from its row below.")
	}
	u.apply(u.keeper.Snapshot())
}
