package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/vramkeeper/vramkeeper/internal/describe"
	"github.com/vramkeeper/vramkeeper/internal/plot"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/keeper"
)

// ui owns every widget. All its fields are touched on the Fyne main
// goroutine only; background goroutines reach it through fyne.Do.
type ui struct {
	ctx    context.Context // cancelled when the app quits
	app    fyne.App
	keeper keeper.Keeper
	opt    Options
	log    *slog.Logger
	cfg    config.Config
	now    func() time.Time

	// wg counts the goroutines that run manager calls for clicks.
	wg sync.WaitGroup
	// gov slows the toolkit's loop while the window idles (nil in tests).
	gov *governor

	win     fyne.Window
	content fyne.CanvasObject
	tabs    *container.AppTabs

	// header
	bar      *CardBars
	source   *widget.Label
	status   *widget.Label
	loading  *fyne.Container
	loadText *widget.Label
	// yieldButton gives the GPU back, or restores the models when it was;
	// yieldText says what waits to be restored.
	yieldButton *widget.Button
	yieldText   *widget.Label
	// banner: what is wrong with Ollama, what to do, and the cause
	banner       *fyne.Container
	bannerText   *widget.Label
	bannerDetail *widget.Label
	startOllama  *widget.Button
	getOllama    *widget.Button
	// noTray says that closing the window quits (no tray icon to come
	// back through).
	noTray *widget.Label
	// ollamaAsked: the tray was asked to start Ollama (opt.StartOllama).
	ollamaAsked bool

	// table, or the models offered for download in its place
	get       *getModels
	getButton *widget.Button
	filter    *widget.Entry
	table     *widget.Table
	sort      Sort
	rows      []Row
	// detail says more about the selected row (selected: its model).
	detail   *widget.Label
	selected string
	// pending are models with a Load clicked and not yet answered, shown
	// as loading before the manager's snapshot says so.
	pending map[string]bool

	// history
	history     []manager.Event
	historyList *widget.List
	historyTab  *container.TabItem
	chart       *Chart
	// chartNext is the newest timeline read, not yet shown: the chart is
	// drawn only while its tab is selected (chartVisible), and the
	// timeline read only then; chartShown says the tab was selected.
	chartNext    *chartUpdate
	chartVisible atomic.Bool
	chartShown   chan struct{}
	// palette gives each model its colour in the bar and the chart.
	palette *plot.Palette

	settings *settingsForm

	snap manager.Snapshot
}

func newUI(ctx context.Context, a fyne.App, opt Options) *ui {
	u := &ui{
		ctx: ctx, app: a, keeper: opt.Keeper, opt: opt, log: opt.Log, cfg: opt.Config,
		now: time.Now, pending: map[string]bool{}, sort: Sort{By: ColName},
	}
	if u.log == nil {
		u.log = slog.Default()
	}
	u.build()
	return u
}

func (u *ui) build() {
	u.palette = plot.NewPalette()
	u.bar = NewCardBars(u.palette)
	u.source = widget.NewLabel("")
	u.status = widget.NewLabel("")
	u.status.Wrapping = fyne.TextWrapWord
	u.loadText = widget.NewLabel("")
	u.loading = container.NewBorder(nil, nil, u.loadText, nil, widget.NewProgressBarInfinite())
	u.loading.Hide()
	u.yieldButton = widget.NewButton("Give GPU back", u.onYield)
	u.yieldText = widget.NewLabel("")
	u.yieldText.Importance = widget.WarningImportance
	u.yieldText.Hide()

	u.bannerText = widget.NewLabel("")
	u.bannerText.Importance = widget.DangerImportance
	u.bannerText.Wrapping = fyne.TextWrapWord
	u.bannerDetail = widget.NewLabel("")
	u.bannerDetail.Importance = widget.LowImportance
	u.bannerDetail.Wrapping = fyne.TextWrapWord
	u.startOllama = widget.NewButton("Start Ollama", u.onStartOllama)
	u.startOllama.Importance = widget.HighImportance
	u.getOllama = widget.NewButton("Get Ollama", u.onGetOllama)
	u.getOllama.Importance = widget.HighImportance
	u.banner = container.NewBorder(nil, u.bannerDetail, nil, container.NewHBox(u.startOllama, u.getOllama), u.bannerText)
	u.banner.Hide()
	u.noTray = widget.NewLabel("This desktop shows no tray icons, so VRAM Keeper has none: closing this window quits it.")
	u.noTray.Wrapping = fyne.TextWrapWord
	u.noTray.Importance = widget.WarningImportance
	if !u.opt.NoTray {
		u.noTray.Hide()
	}

	u.get = newGetModels(u)
	u.getButton = widget.NewButton("Get models…", func() {
		u.get.asked = true
		u.get.update(u.snap)
		u.showModels()
	})
	u.filter = widget.NewEntry()
	u.filter.SetPlaceHolder("Filter models by name, family or quantization")
	u.filter.OnChanged = func(string) { u.refreshRows() }
	u.table = u.newTable()
	u.detail = widget.NewLabel("Select a model for its context, the largest that fits now, and its last error.")
	u.detail.Wrapping = fyne.TextWrapWord

	u.historyList = widget.NewList(
		func() int { return len(u.history) },
		func() fyne.CanvasObject { return widget.NewLabel("") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			o.(*widget.Label).SetText(describe.Event(u.history[len(u.history)-1-i]))
		},
	)

	u.chart = NewChart(u.palette)

	u.settings = newSettingsForm(u)

	header := container.NewVBox(u.noTray, u.banner, u.bar, container.NewBorder(nil, nil, nil, u.yieldButton, u.source),
		u.yieldText, u.loading, u.get.progress, u.status)
	models := container.NewBorder(container.NewBorder(nil, nil, nil, u.getButton, u.filter), u.detail, nil, nil,
		container.NewStack(u.table, u.get.panel))
	u.historyTab = container.NewTabItem("History", container.NewVSplit(u.chart, u.historyList))
	u.tabs = container.NewAppTabs(
		container.NewTabItem("Models", models),
		u.historyTab,
		container.NewTabItem("Settings", container.NewVScroll(u.settings.form)),
	)
	u.chartShown = make(chan struct{}, 1)
	u.tabs.OnSelected = func(t *container.TabItem) {
		shown := t == u.historyTab
		u.chartVisible.Store(shown)
		if shown {
			u.flushChart()
			select {
			case u.chartShown <- struct{}{}:
			default:
			}
		}
	}
	u.content = container.NewBorder(header, nil, nil, nil, u.tabs)
}

// rowButton is a Load, Unload or Pin button in the table; it knows its
// model so tests can find the button of a row.
type rowButton struct {
	widget.Button
	Model string
}

func newRowButton(label string) *rowButton {
	b := &rowButton{}
	b.Text = label
	b.ExtendBaseWidget(b)
	return b
}

// columnWidths hold what the columns show for models people run
// ("nomic-bert", "527 MiB (measured)", "idle · warm 100 %", "59 min ago")
// and fit the window side by side (TestColumnsHoldTheirText).
var columnWidths = [numColumns]float32{185, 90, 75, 70, 135, 150, 64, 60, 135, 92, 170}

func (u *ui) newTable() *widget.Table {
	t := widget.NewTable(
		func() (int, int) { return len(u.rows), int(numColumns) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Truncation = fyne.TextTruncateEllipsis
			load, unload, pin := newRowButton("Load"), newRowButton("Unload"), newRowButton("Pin")
			return container.NewStack(l, container.NewHBox(load, unload, pin), newContextSelect())
		},
		func(id widget.TableCellID, o fyne.CanvasObject) {
			if id.Row < 0 || id.Row >= len(u.rows) {
				return
			}
			u.updateCell(u.rows[id.Row], Column(id.Col), o.(*fyne.Container))
		},
	)
	t.OnSelected = func(id widget.TableCellID) {
		if id.Row >= 0 && id.Row < len(u.rows) {
			u.selected = u.rows[id.Row].Name
			u.showDetail()
		}
	}
	t.ShowHeaderRow = true
	t.CreateHeader = func() fyne.CanvasObject { return widget.NewButton("", nil) }
	t.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		b := o.(*widget.Button)
		c := Column(id.Col)
		title := c.Title()
		if c == u.sort.By && c != ColActions {
			title += map[bool]string{false: " ▲", true: " ▼"}[u.sort.Desc]
		}
		b.SetText(title)
		if c == ColActions {
			b.OnTapped = nil
			return
		}
		b.OnTapped = func() { u.sortBy(c) }
	}
	for i, w := range columnWidths {
		t.SetColumnWidth(i, w)
	}
	return t
}

func (u *ui) updateCell(r Row, c Column, cell *fyne.Container) {
	label := cell.Objects[0].(*widget.Label)
	box := cell.Objects[1].(*fyne.Container)
	sel := cell.Objects[2].(*contextSelect)
	// The label keeps the cell's text even where a control covers it. A
	// cell is redrawn only when what it shows changed: the table asks for
	// every cell whenever a row changes, and text is costly to lay out.
	text := r.Text(c)
	switch c {
	case ColActions:
		label.Text = text
		label.Hide()
		sel.Hide()
		box.Show()
	case ColContext:
		label.Text = text
		label.Hide()
		box.Hide()
		sel.Show()
		sel.set(r, func(choice string) { u.setContext(r.Name, choice) })
		return
	default:
		box.Hide()
		sel.Hide()
		imp := widget.MediumImportance
		if (c == ColFits && !r.Fits) || (c == ColStatus && (r.CPUPercent > 0 || r.Error != "")) {
			imp = widget.DangerImportance
		}
		if label.Text != text || label.Importance != imp {
			label.Text, label.Importance = text, imp
			label.Refresh()
		}
		label.Show()
		return
	}
	load, unload, pin := box.Objects[0].(*rowButton), box.Objects[1].(*rowButton), box.Objects[2].(*rowButton)
	name := r.Name
	for _, b := range []*rowButton{load, unload, pin} {
		b.Model = name
	}
	load.OnTapped = func() { u.loadModel(name) }
	unload.OnTapped = func() { u.unloadModel(name) }
	pinned := r.Pinned
	pin.OnTapped = func() { u.setPinned(name, !pinned) }
	if pinned {
		setButtonText(&pin.Button, "Unpin")
	} else {
		setButtonText(&pin.Button, "Pin")
	}
	busy := r.Status == string(manager.Loading) || r.Status == string(manager.Unloading)
	setEnabled(load, !r.Loaded && !busy && u.snap.OllamaUp && !u.snap.Yielded)
	setEnabled(unload, r.Loaded && !busy)
}

// contextSelect is a row's context selector; it knows its model so tests
// can find it.
type contextSelect struct {
	widget.Select
	Model string
}

func newContextSelect() *contextSelect {
	s := &contextSelect{}
	s.ExtendBaseWidget(s)
	return s
}

// set shows a row's context without calling back: the table reuses cells,
// and only a user's choice may change a setting.
func (s *contextSelect) set(r Row, onChange func(string)) {
	s.OnChanged = nil
	s.Model = r.Name
	if opts := r.ContextChoices(); !slices.Equal(opts, s.Options) || s.Selected != r.Context {
		s.Options = opts
		s.SetSelected(r.Context)
	}
	s.OnChanged = onChange
}

func setEnabled(b *rowButton, on bool) {
	if on {
		b.Enable()
	} else {
		b.Disable()
	}
}

func (u *ui) sortBy(c Column) {
	if u.sort.By == c {
		u.sort.Desc = !u.sort.Desc
	} else {
		u.sort = Sort{By: c}
	}
	u.refreshRows()
	u.table.Refresh()
}

// refreshRows recomputes the rows from the last snapshot and redraws the
// table only when they changed.
func (u *ui) refreshRows() {
	rows := Rows(u.snap, u.filter.Text, u.sort, u.now())
	for i := range rows {
		if u.pending[rows[i].Name] && !rows[i].Loaded {
			rows[i].Status = string(manager.Loading)
		}
	}
	if slices.Equal(rows, u.rows) {
		return
	}
	u.rows = rows
	u.table.Refresh()
	u.showDetail()
}

// showDetail says more about the selected model, from the last rows.
func (u *ui) showDetail() {
	for _, r := range u.rows {
		if r.Name == u.selected {
			setText(u.detail, r.Detail)
			return
		}
	}
}

// showModels shows the table, or the models offered for download in its
// place (none installed, or "Get models…" pressed).
func (u *ui) showModels() {
	offer := u.get.visible()
	showIf(u.get.panel, offer)
	showIf(u.table, !offer)
	showIf(u.filter, !offer)
	showIf(u.detail, !offer)
	showIf(u.getButton, !offer)
	if u.snap.OllamaUp {
		u.getButton.Enable()
	} else {
		u.getButton.Disable()
	}
}

// apply shows a snapshot in the window.
func (u *ui) apply(s manager.Snapshot) {
	u.snap = s
	u.refreshRows()
	u.get.update(s)
	u.showModels()

	u.bar.SetSnapshot(s)
	setText(u.source, sourceText(s))

	loading := describe.Loading(s, u.now())
	if loading == "" {
		for name := range u.pending {
			loading = "loading " + name
			break
		}
	}
	if loading != "" {
		setText(u.loadText, describe.Sentence(loading)+"…")
		u.loading.Show()
	} else {
		u.loading.Hide()
	}

	if y := describe.Yielded(s); y != "" {
		setText(u.yieldText, describe.Sentence(y)+". Nothing loads until you restore.")
		u.yieldText.Show()
		setButtonText(u.yieldButton, "Restore models")
	} else {
		u.yieldText.Hide()
		setButtonText(u.yieldButton, "Give GPU back")
	}
	// A button that would do nothing is disabled: Give GPU back with
	// nothing on the card, Restore while Ollama is away.
	if (s.Yielded && s.OllamaUp) || (!s.Yielded && canGiveBack(s)) {
		u.yieldButton.Enable()
	} else {
		u.yieldButton.Disable()
	}

	if s.OllamaUp {
		u.banner.Hide()
	} else {
		h := OllamaHelpFor(s, u.opt.OllamaURL, u.opt.OllamaBin, u.opt.StartOllama != nil, u.ollamaAsked)
		setText(u.bannerText, h.Text)
		setText(u.bannerDetail, h.Detail)
		showIf(u.bannerDetail, h.Detail != "")
		showIf(u.startOllama, h.Start)
		showIf(u.getOllama, h.Install)
		u.banner.Show()
	}

	u.settings.update(s)
	if u.gov != nil {
		// A moving progress bar needs the full frame rate.
		u.gov.setBusy(u.loading.Visible() || u.get.pulling != "")
	}
}

func sourceText(s manager.Snapshot) string {
	if s.VRAM.Measured() {
		t := "Source: " + card.SourceLabel(s.VRAM.Source)
		if s.VRAM.Name != "" {
			t += " (" + s.VRAM.Name + ")"
		}
		return t
	}
	why := "no GPU driver answers"
	for _, c := range s.Cards {
		if c.Integrated {
			why = c.Name + " is integrated (shares system memory)"
		}
	}
	return "Source: estimated — " + why + "; assuming the configured " + config.FormatBytes(s.VRAM.Total) + " card"
}

// call runs a manager call off the main goroutine (calls wait on the
// manager and on Ollama), then refreshes and shows its error, if any.
func (u *ui) call(what string, f func(ctx context.Context) error) {
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		err := f(u.ctx)
		if errors.Is(err, context.Canceled) && u.ctx.Err() != nil {
			return // quitting
		}
		if err != nil {
			u.log.Warn(what+" failed", "err", err)
		}
		fyne.Do(func() {
			if err != nil {
				u.setStatus(fmt.Sprintf("%s failed: %v", what, err))
			}
			u.apply(u.keeper.Snapshot())
		})
	}()
}

func (u *ui) setStatus(s string) {
	setText(u.status, s)
}

func (u *ui) loadModel(name string) {
	u.pending[name] = true
	u.setStatus("")
	u.apply(u.snap)
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		_, err := u.keeper.LoadAt(u.ctx, name, 0, "loaded from the window")
		if err != nil && u.ctx.Err() == nil {
			u.log.Warn("load failed", "model", name, "err", err)
		}
		fyne.Do(func() {
			delete(u.pending, name)
			if err != nil && u.ctx.Err() == nil {
				u.setStatus(fmt.Sprintf("Loading %s failed: %v", name, err))
			}
			u.apply(u.keeper.Snapshot())
		})
	}()
}

func (u *ui) unloadModel(name string) {
	u.setStatus("")
	u.call("Unloading "+name, func(ctx context.Context) error { return u.keeper.Unload(ctx, name) })
}

// onYield gives the GPU back, or puts the models back when it was given.
func (u *ui) onYield() {
	if u.snap.Yielded {
		u.setStatus("Restoring the models…")
		u.call("Restoring the models", func(ctx context.Context) error {
			names, err := u.keeper.Restore(ctx)
			if err == nil {
				fyne.Do(func() { u.setStatus(namesSaid("Restored", names, "Nothing to restore")) })
			}
			return err
		})
		return
	}
	u.setStatus("Giving the GPU back…")
	u.call("Giving the GPU back", func(ctx context.Context) error {
		names, err := u.keeper.Yield(ctx)
		if err == nil {
			fyne.Do(func() {
				u.setStatus(namesSaid("Gave the GPU back: unloaded", names, "Gave the GPU back (no model was loaded)"))
			})
		}
		return err
	})
}

// namesSaid is "what a, b", or none when there are no names.
func namesSaid(what string, names []string, none string) string {
	if len(names) == 0 {
		return none
	}
	return what + " " + strings.Join(names, ", ")
}

// setContext gives a model a context of its own (or takes it away: the
// default), in the config file ([models."NAME"] context_length) and in
// the running manager, which loads it at that context from then on.
func (u *ui) setContext(name, choice string) {
	n, err := ContextOf(choice)
	if err != nil {
		u.setStatus(err.Error())
		return
	}
	c := u.cfg
	c.Models = maps.Clone(c.Models)
	switch n {
	case 0:
		delete(c.Models, name)
	case manager.ContextAuto:
		c.Models = withModel(c.Models, name, config.ModelConfig{ContextLength: "auto"})
	default:
		c.Models = withModel(c.Models, name, config.ModelConfig{ContextLength: int64(n)})
	}
	if err := u.saveConfig(c); err != nil {
		u.setStatus(err.Error())
		return
	}
	u.cfg = c
	u.setStatus("")
	u.call("Setting the context of "+name, func(ctx context.Context) error {
		var set *manager.ContextLength // 0: the model follows the default again
		if n != 0 {
			c := manager.ContextLength(n)
			set = &c
		}
		return u.keeper.Apply(ctx, manager.SettingsPatch{Contexts: map[string]*manager.ContextLength{name: set}})
	})
}

func withModel(m map[string]config.ModelConfig, name string, mc config.ModelConfig) map[string]config.ModelConfig {
	if m == nil {
		m = map[string]config.ModelConfig{}
	}
	m[name] = mc
	return m
}

// setPinned pins or unpins a model in the manager and in the config file,
// so the pin outlives a restart.
func (u *ui) setPinned(name string, pinned bool) {
	u.cfg.Pinned = slices.DeleteFunc(slices.Clone(u.cfg.Pinned), func(n string) bool { return n == name })
	if pinned {
		u.cfg.Pinned = append(u.cfg.Pinned, name)
	}
	if err := u.saveConfig(u.cfg); err != nil {
		u.setStatus(err.Error())
	}
	u.settings.load(u.cfg)
	u.call("Pinning "+name, func(ctx context.Context) error { return u.keeper.SetPinned(ctx, name, pinned) })
}

func (u *ui) saveConfig(c config.Config) error {
	if u.opt.ConfigPath == "" {
		return nil
	}
	if err := config.Save(u.opt.ConfigPath, c); err != nil {
		return fmt.Errorf("saving settings: %w", err)
	}
	return nil
}

// handleEvent refreshes the history when the event belongs to it. The
// window sends no notifications: the tray does, whether the window is
// open or not, and two would say everything twice.
func (u *ui) handleEvent(e manager.Event) {
	if e.Historic() {
		u.history = u.keeper.History()
		u.historyList.Refresh()
	}
}

// onGetOllama opens Ollama's download page in the browser.
func (u *ui) onGetOllama() {
	link, err := url.Parse(OllamaDownload)
	if err == nil {
		err = u.app.OpenURL(link)
	}
	if err != nil {
		u.setStatus("Could not open the browser (" + err.Error() + "): install Ollama from " + OllamaDownload)
	}
}

// setText and setButtonText change a text only when it differs: each
// Refresh repaints the whole window, which an idle window must not do
// every time the state is read again.
func setText(l *widget.Label, text string) {
	if l.Text != text {
		l.SetText(text)
	}
}

func setButtonText(b *widget.Button, text string) {
	if b.Text != text {
		b.SetText(text)
	}
}

func showIf(o fyne.CanvasObject, show bool) {
	if show {
		o.Show()
	} else {
		o.Hide()
	}
}

func (u *ui) onStartOllama() {
	if u.opt.StartOllama == nil {
		return
	}
	u.ollamaAsked = true
	u.startOllama.Hide()
	u.setStatus("Starting `ollama serve`; waiting for it to answer…")
	u.call("Starting Ollama", func(ctx context.Context) error {
		err := u.opt.StartOllama(ctx)
		fyne.Do(func() {
			if err != nil {
				u.ollamaAsked = false
			} else {
				u.setStatus("") // the banner goes, and what comes next says what to do
			}
		})
		return err
	})
}

// clockRefresh is how soon the window must look again for the clock's
// sake alone: a load in progress counts its seconds.
func clockRefresh(s manager.Snapshot) time.Duration {
	if s.Loading != "" {
		return time.Second
	}
	return 30 * time.Second
}

// loop feeds manager events to the UI until ctx ends: the history per
// event, and one refresh per burst (kick has a buffer of one, so events
// arriving while a refresh runs cause exactly one more). A timer
// refreshes too, for what the clock changes: a load's seconds (every
// second while one runs), "last used" (every half minute otherwise).
func (u *ui) loop(ctx context.Context, wg *sync.WaitGroup) {
	events, unsubscribe := u.keeper.Subscribe(256)
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	// What changed between the first apply and the subscription (the
	// window starts for a second or more) shows at once, not at the
	// first tick.
	poke()
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer unsubscribe()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-events:
				if !ok {
					return
				}
				fyne.Do(func() { u.handleEvent(e) })
				poke()
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		u.followTimeline(ctx, u.keeper, timelinePoll)
	}()
	go func() {
		defer wg.Done()
		t := time.NewTimer(clockRefresh(u.keeper.Snapshot()))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				t.Reset(clockRefresh(u.keeper.Snapshot()))
				poke()
			case <-kick:
				// Wait for the refresh to run, so kicks during it collapse
				// into one; but not past quitting, when the main loop may
				// never run it.
				s := u.keeper.Snapshot()
				done := make(chan struct{})
				fyne.Do(func() { u.apply(s); close(done) })
				select {
				case <-done:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
}
