package app

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

type harness struct {
	u    *ui
	k    *fakeKeeper
	w    fyne.Window
	path string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	isolateAutostart(t)
	a := test.NewTempApp(t)
	k := newFake(testSnapshot())
	path := filepath.Join(t.TempDir(), "config.toml")
	cfg := config.Default()
	cfg.Budget = "7GiB"
	ctx, cancel := context.WithCancel(context.Background())
	u := newUI(ctx, a, Options{Keeper: k, Config: cfg, ConfigPath: path, Tasks: []string{"chat", "code_generation"}, OllamaURL: "http://127.0.0.1:11434"})
	t.Cleanup(func() { cancel(); u.wg.Wait() })
	u.now = func() time.Time { return k.Snapshot().Time }
	w := test.NewTempWindow(t, u.content)
	w.Resize(fyne.NewSize(1300, 700))
	u.win = w
	u.apply(k.Snapshot())
	return &harness{u: u, k: k, w: w, path: path}
}

// cell renders one table cell through the table's own CreateCell and
// UpdateCell, as the table does for the visible cells. (The test driver
// does not lay out a Table's cells by itself.)
func (h *harness) cell(row int, col Column) *fyne.Container {
	c := h.u.table.CreateCell()
	h.u.table.UpdateCell(widget.TableCellID{Row: row, Col: int(col)}, c)
	return c.(*fyne.Container)
}

// cellTexts is the visible text of every data cell, row by row.
func (h *harness) cellTexts() [][]string {
	var out [][]string
	for r := range h.u.rows {
		var line []string
		for c := ColName; c < ColActions; c++ {
			line = append(line, h.cell(r, c).Objects[0].(*widget.Label).Text)
		}
		out = append(out, line)
	}
	return out
}

func (h *harness) rowButton(t *testing.T, model, text string) *rowButton {
	t.Helper()
	for r, row := range h.u.rows {
		if row.Name != model {
			continue
		}
		box := h.cell(r, ColActions).Objects[1].(*fyne.Container)
		for _, o := range box.Objects {
			if b := o.(*rowButton); b.Model == model && b.Text == text && !b.Disabled() {
				return b
			}
		}
	}
	t.Fatalf("no enabled %q button for %s", text, model)
	return nil
}

// waitCalls waits for the manager calls that clicks started, and their
// refreshes, to finish (the test driver runs fyne.Do on the caller's
// goroutine, so the test must not touch widgets meanwhile), then checks
// that want was among the calls.
func waitCalls(t *testing.T, h *harness, want string) {
	t.Helper()
	h.u.wg.Wait()
	if !slices.Contains(h.k.Calls(), want) {
		t.Fatalf("manager calls %v, want %q among them", h.k.Calls(), want)
	}
}

func TestTableShowsRows(t *testing.T) {
	h := newHarness(t)
	// Every model with its estimate, fit and priority.
	want := [][]string{
		{"gemma3:27b", "gemma3", "27.4B", "Q4_K_M", "Default (4096)", "17.0 GiB", "too big", "3", "idle", "never"},
		{"llama3.2:3b", "llama", "3.2B", "Q4_K_M", "Default (4096)", "2.5 GiB", "fits", "5", "idle", "5 min ago"},
		{"qwen2.5:7b", "qwen2", "7.6B", "Q4_K_M", "Default (4096)", "4.6 GiB (measured)", "fits", "7", "loaded", "just now"},
	}
	if got := h.cellTexts(); !reflect.DeepEqual(got, want) {
		t.Errorf("table =\n%q\nwant\n%q", got, want)
	}
	if r, c := h.u.table.Length(); r != 3 || c != int(numColumns) {
		t.Errorf("table size %dx%d", r, c)
	}
	if got := h.u.source.Text; got != "Source: estimated — no GPU driver answers; assuming the configured 8.0 GiB card" {
		t.Errorf("source = %q", got)
	}
	// Loaded rows offer Unload, idle rows Load.
	if b := h.cell(2, ColActions).Objects[1].(*fyne.Container).Objects[0].(*rowButton); !b.Disabled() {
		t.Error("Load is enabled on a loaded model")
	}
	// Filtering narrows the table.
	test.Type(h.u.filter, "gemma")
	if len(h.u.rows) != 1 || h.u.rows[0].Name != "gemma3:27b" {
		t.Errorf("filtered rows = %+v", h.u.rows)
	}
}

func TestTapLoadUnloadPin(t *testing.T) {
	h := newHarness(t)
	test.Tap(h.rowButton(t, "llama3.2:3b", "Load"))
	waitCalls(t, h, "load llama3.2:3b")
	test.Tap(h.rowButton(t, "qwen2.5:7b", "Unload"))
	waitCalls(t, h, "unload qwen2.5:7b")
	test.Tap(h.rowButton(t, "gemma3:27b", "Pin"))
	waitCalls(t, h, "pin gemma3:27b")
	c, err := config.Load(h.path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Pinned, []string{"gemma3:27b"}) {
		t.Errorf("pinned in the file = %v", c.Pinned)
	}
}

func TestSortByHeader(t *testing.T) {
	h := newHarness(t)
	h.u.sortBy(ColPriority)
	h.u.sortBy(ColPriority) // second tap: descending
	if h.u.rows[0].Name != "qwen2.5:7b" {
		t.Errorf("first row by priority desc = %s", h.u.rows[0].Name)
	}
}

// TestWindowDoesNotNotify: the tray notifies; the window, open or not,
// says nothing, so an eviction is never notified twice.
func TestWindowDoesNotNotify(t *testing.T) {
	h := newHarness(t)
	e := manager.Event{Time: time.Now(), Kind: manager.EventEvicted, Model: "qwen2.5:7b", For: "llama3.2:3b", Bytes: 46 * gib / 10}
	test.AssertNotificationSent(t, nil, func() { h.u.handleEvent(e) })
}

func TestOllamaDownBanner(t *testing.T) {
	h := newHarness(t)
	if h.u.banner.Visible() {
		t.Fatal("banner shown while Ollama is up")
	}
	s := h.k.Snapshot()
	s.OllamaUp, s.RuntimeErr = false, "ollama at http://127.0.0.1:11434 unreachable: ps: dial tcp 127.0.0.1:11434: connect: connection refused"
	h.k.mu.Lock()
	h.k.snap = s
	h.k.mu.Unlock()
	h.u.apply(s)
	// Not installed (the harness's tray found no `ollama`): how to get it.
	if !h.u.banner.Visible() || h.u.bannerText.Text != "Ollama is not running at 127.0.0.1:11434, and it is not installed. "+
		"Install it from ollama.com/download, then start it with `ollama serve`." {
		t.Errorf("banner visible=%v text=%q", h.u.banner.Visible(), h.u.bannerText.Text)
	}
	if !h.u.getOllama.Visible() || h.u.startOllama.Visible() {
		t.Errorf("Get Ollama shown %v, Start Ollama shown %v", h.u.getOllama.Visible(), h.u.startOllama.Visible())
	}
	// The cause is under it, not in it.
	if !h.u.bannerDetail.Visible() || h.u.bannerDetail.Text != s.RuntimeErr || strings.Contains(h.u.bannerText.Text, "refused") {
		t.Errorf("detail %q (shown %v)", h.u.bannerDetail.Text, h.u.bannerDetail.Visible())
	}
	// Installed, and the tray can start it: Start Ollama asks the tray once.
	started := make(chan struct{}, 1)
	h.u.opt.OllamaBin = "/usr/local/bin/ollama"
	h.u.opt.StartOllama = func(context.Context) error { started <- struct{}{}; return nil }
	h.u.apply(s)
	if !h.u.startOllama.Visible() || h.u.getOllama.Visible() || !strings.HasSuffix(h.u.bannerText.Text, "Start it with the button, or run `ollama serve` in a terminal.") {
		t.Fatalf("banner %q, Start shown %v, Get shown %v", h.u.bannerText.Text, h.u.startOllama.Visible(), h.u.getOllama.Visible())
	}
	test.Tap(h.u.startOllama)
	h.u.wg.Wait()
	if len(started) != 1 || h.u.startOllama.Visible() || !strings.Contains(h.u.bannerText.Text, "Starting it") {
		t.Errorf("after Start Ollama: asked %d times, button shown %v, banner %q", len(started), h.u.startOllama.Visible(), h.u.bannerText.Text)
	}
	if GaugeOf(s).Color() != ColorDown {
		t.Error("icon not grey while down")
	}
	if h.u.yieldButton.Disabled() == false {
		t.Error("Give GPU back is enabled while Ollama is away")
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	h := newHarness(t)
	f := h.u.settings
	f.budget.SetText("6.5GiB")
	f.maxLoaded.SetText("3")
	f.numCtx.SetText("8192")
	f.url.SetText("http://127.0.0.1:11500")
	f.pinned.SetSelected([]string{"llama3.2:3b"})
	f.notify.SetChecked(false)
	f.autostart.SetChecked(true)
	test.Tap(f.save)
	if f.result.Importance != widget.SuccessImportance {
		t.Fatalf("save failed: %s", f.result.Text)
	}
	c, err := config.Load(h.path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Budget != "6.5GiB" || c.MaxLoaded != 3 || c.ContextLength != 8192 || c.OllamaURL != "http://127.0.0.1:11500" ||
		!slices.Equal(c.Pinned, []string{"llama3.2:3b"}) || c.Notifications {
		t.Errorf("saved config = %+v", c)
	}
	if c.Listen != config.Default().Listen {
		t.Errorf("a key without a widget was lost: listen = %q", c.Listen)
	}
	waitCalls(t, h, "apply")
	waitCalls(t, h, "pin llama3.2:3b")
	h.k.mu.Lock()
	o := *h.k.applied
	h.k.mu.Unlock()
	if o.MaxLoaded == nil || *o.MaxLoaded != 3 || o.NumCtx == nil || *o.NumCtx != 8192 || o.Budget == nil || o.Budget.Bytes != 13*gib/2 {
		t.Errorf("applied options = %+v", o)
	}
	// Only what the form changed reaches the manager.
	if o.GPUOnly != nil || o.LoadTimeout != nil || o.Contexts != nil {
		t.Errorf("the patch names settings the form did not change: %+v", o)
	}
	if b, err := readAutostart(); err != nil || !strings.Contains(b, autostartMark) {
		t.Errorf("autostart entry: %v %q", err, b)
	}

	// The slider follows the exact value, and back.
	if v := f.budgetSlider.Value; v != 6.5 {
		t.Errorf("slider = %v, want 6.5", v)
	}
	f.budgetSlider.SetValue(5)
	if f.budget.Text != "5.0GiB" {
		t.Errorf("entry after slider = %q", f.budget.Text)
	}

	// A new form shows what was saved.
	h.u.settings.load(c)
	if f.maxLoaded.Text != "3" || f.numCtx.Text != "8192" {
		t.Errorf("reloaded form: max %q ctx %q", f.maxLoaded.Text, f.numCtx.Text)
	}
}

func TestSettingsRejectBadValues(t *testing.T) {
	tests := []struct {
		name  string
		set   func(f *settingsForm)
		key   string
		shows string
	}{
		{"negative max loaded", func(f *settingsForm) { f.maxLoaded.SetText("-1") }, "max_loaded", "must be 0 (as many as the budget holds) or more"},
		{"words for context", func(f *settingsForm) { f.numCtx.SetText("lots") }, "context_length", "not a whole number"},
		{"bad budget", func(f *settingsForm) { f.budget.SetText("7 parsecs") }, "budget", "unknown unit"},
		{"bad percentage", func(f *settingsForm) { f.budget.SetText("150%") }, "budget", "between 1 and 100"},
		{"bad url", func(f *settingsForm) { f.url.SetText("ftp://x") }, "ollama_url", "scheme must be http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			f := h.u.settings
			tt.set(f)
			test.Tap(f.save)
			if _, err := os.Stat(h.path); err == nil {
				t.Error("an invalid config was saved")
			}
			if hint := f.items[tt.key].HintText; !strings.Contains(hint, tt.shows) {
				t.Errorf("hint for %s = %q, want it to say %q", tt.key, hint, tt.shows)
			}
			if f.result.Importance != widget.DangerImportance || !strings.Contains(f.result.Text, tt.key) {
				t.Errorf("result = %q", f.result.Text)
			}
			for k, it := range f.items {
				if k != tt.key && it.HintText != "" {
					t.Errorf("unrelated field %s shows %q", k, it.HintText)
				}
			}
		})
	}
}

// TestEventBurstShows: a burst of events ends with the window showing the
// new state.
func TestEventBurstShows(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := h.k.Snapshot()
	s.Used = 65 * gib / 10
	h.k.mu.Lock()
	h.k.snap = s
	h.k.reads = 0
	h.k.mu.Unlock()
	for range 10 {
		h.k.events <- manager.Event{Kind: manager.EventVRAM}
	}
	h.u.loop(ctx, &h.u.wg)
	deadline := time.Now().Add(10 * time.Second)
	for h.k.snapshotReads() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a condition, bounded
	}
	cancel()
	h.u.wg.Wait() // the loop's refreshes are done: widgets are safe to read
	if h.u.snap.Used != s.Used {
		t.Errorf("after the burst the window shows %d bytes used, want %d", h.u.snap.Used, s.Used)
	}
}

// Give GPU back and Restore from the window: one button, its label and
// the line under it follow the manager's state, and loads wait meanwhile.
func TestGiveBackAndRestore(t *testing.T) {
	h := newHarness(t)
	if h.u.yieldButton.Text != "Give GPU back" || h.u.yieldText.Visible() {
		t.Fatalf("button %q, yield line shown %v", h.u.yieldButton.Text, h.u.yieldText.Visible())
	}
	test.Tap(h.u.yieldButton)
	waitCalls(t, h, "yield")
	if h.u.yieldButton.Text != "Restore models" || !h.u.yieldText.Visible() ||
		h.u.yieldText.Text != "Gave the GPU back (to restore: qwen2.5:7b). Nothing loads until you restore." {
		t.Errorf("after yield: button %q, line %q (shown %v)", h.u.yieldButton.Text, h.u.yieldText.Text, h.u.yieldText.Visible())
	}
	if h.u.status.Text != "Gave the GPU back: unloaded qwen2.5:7b" {
		t.Errorf("status %q", h.u.status.Text)
	}
	for r, row := range h.u.rows {
		if b := h.cell(r, ColActions).Objects[1].(*fyne.Container).Objects[0].(*rowButton); !b.Disabled() {
			t.Errorf("Load of %s is enabled while the GPU is given back", row.Name)
		}
	}
	test.Tap(h.u.yieldButton)
	waitCalls(t, h, "restore")
	if h.u.yieldButton.Text != "Give GPU back" || h.u.yieldText.Visible() || h.u.status.Text != "Restored qwen2.5:7b" {
		t.Errorf("after restore: button %q, line shown %v, status %q", h.u.yieldButton.Text, h.u.yieldText.Visible(), h.u.status.Text)
	}
}

// A load in progress shows with its seconds, refreshed with the snapshot.
func TestLoadingLine(t *testing.T) {
	h := newHarness(t)
	if h.u.loading.Visible() {
		t.Fatal("loading line shown with nothing loading")
	}
	s := h.k.Snapshot()
	s.Loading, s.LoadingSince = "llama3.2:3b", s.Time.Add(-12*time.Second)
	h.u.apply(s)
	if !h.u.loading.Visible() || h.u.loadText.Text != "Loading llama3.2:3b (12 s)…" {
		t.Errorf("loading line %q (shown %v)", h.u.loadText.Text, h.u.loading.Visible())
	}
	h.u.now = func() time.Time { return s.Time.Add(3 * time.Second) }
	h.u.apply(s)
	if h.u.loadText.Text != "Loading llama3.2:3b (15 s)…" {
		t.Errorf("three seconds on, the line says %q", h.u.loadText.Text)
	}
}

// contextSelect returns the context selector of a model's row.
func (h *harness) contextSelect(t *testing.T, model string) *contextSelect {
	t.Helper()
	for r, row := range h.u.rows {
		if row.Name == model {
			return h.cell(r, ColContext).Objects[2].(*contextSelect)
		}
	}
	t.Fatalf("no row for %s", model)
	return nil
}

// A row's context selector saves [models."NAME"] context_length to the
// config file and gives the running manager the per-model contexts; the
// default takes the model's own away. Drawing the table changes nothing.
func TestContextSelector(t *testing.T) {
	h := newHarness(t)
	sel := h.contextSelect(t, "llama3.2:3b")
	if sel.Selected != "Default (4096)" || !sel.Visible() || len(sel.Options) < 4 {
		t.Fatalf("selector shows %q of %v", sel.Selected, sel.Options)
	}
	// The table reuses a cell for other rows: showing another row's
	// context must not set it on the row the cell showed before.
	s := h.k.Snapshot()
	s.Settings.Contexts = map[string]int{"qwen2.5:7b": 16384}
	h.u.apply(s)
	cell := h.u.table.CreateCell()
	for row := range h.u.rows {
		h.u.table.UpdateCell(widget.TableCellID{Row: row, Col: int(ColContext)}, cell)
	}
	if slices.Contains(h.k.Calls(), "apply") {
		t.Fatalf("drawing the table applied settings: %v", h.k.Calls())
	}
	tokens := func(n int) *manager.ContextLength { c := manager.ContextLength(n); return &c }
	for _, tc := range []struct {
		choice string
		file   any // context_length in the file; nil: none
		want   map[string]*manager.ContextLength
	}{
		{"16384", int64(16384), map[string]*manager.ContextLength{"llama3.2:3b": tokens(16384)}},
		{"auto", "auto", map[string]*manager.ContextLength{"llama3.2:3b": tokens(manager.ContextAuto)}},
		{"Default (4096)", nil, map[string]*manager.ContextLength{"llama3.2:3b": nil}},
	} {
		sel.SetSelected(tc.choice) // as a user's pick: OnChanged runs
		waitCalls(t, h, "apply")
		c, err := config.Load(h.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Models["llama3.2:3b"].ContextLength; got != tc.file {
			t.Errorf("%s: the file holds context_length %v, want %v", tc.choice, got, tc.file)
		}
		h.k.mu.Lock()
		got := h.k.applied.Contexts
		h.k.mu.Unlock()
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: the manager got contexts %v, want %v", tc.choice, got, tc.want)
		}
	}
}

// Selecting a row tells what its cells cannot: the largest context that
// fits now, the CPU share, a failed load's error and retry time.
func TestRowDetail(t *testing.T) {
	h := newHarness(t)
	s := h.k.Snapshot()
	s.Models = append([]manager.ModelView(nil), s.Models...)
	s.Models[0].State, s.Models[0].Error, s.Models[0].RetryAt = manager.Failed, "out of memory", s.Time.Add(time.Minute)
	s.Models[2].CPUPercent, s.Models[2].MaxFitCtx, s.Models[2].NumCtx = 38, 16384, 4096
	h.u.apply(s)
	for _, tc := range []struct {
		row  int
		want []string
	}{
		{0, []string{"gemma3:27b", "out of memory", "retry at"}},
		{2, []string{"qwen2.5:7b", "fits now at up to 16384 tokens", "38 % on CPU"}},
	} {
		h.u.table.Select(widget.TableCellID{Row: tc.row, Col: int(ColName)})
		for _, w := range tc.want {
			if !strings.Contains(h.u.detail.Text, w) {
				t.Errorf("row %d: detail %q lacks %q", tc.row, h.u.detail.Text, w)
			}
		}
	}
	status := h.cell(0, ColStatus).Objects[0].(*widget.Label)
	if !strings.HasPrefix(status.Text, "failed · retry at") || status.Importance != widget.DangerImportance {
		t.Errorf("failed row's status %q (importance %v)", status.Text, status.Importance)
	}
}

// GPU only and the load timeout are saved and reach the running manager;
// a timeout that is no duration is refused at its field.
func TestSettingsGPUOnlyAndTimeout(t *testing.T) {
	h := newHarness(t)
	f := h.u.settings
	f.gpuOnly.SetChecked(true)
	f.loadTimeout.SetText("90s")
	test.Tap(f.save)
	if f.result.Importance != widget.SuccessImportance {
		t.Fatalf("save failed: %s", f.result.Text)
	}
	c, err := config.Load(h.path)
	if err != nil || !c.GPUOnly || c.LoadTimeout != "90s" {
		t.Fatalf("saved %+v, %v", c, err)
	}
	waitCalls(t, h, "apply")
	h.k.mu.Lock()
	o := *h.k.applied
	h.k.mu.Unlock()
	if o.GPUOnly == nil || !*o.GPUOnly || o.LoadTimeout == nil || *o.LoadTimeout != config.Duration(90*time.Second) || o.Budget != nil {
		t.Errorf("applied %+v", o)
	}
	f.loadTimeout.SetText("soon")
	test.Tap(f.save)
	if hint := f.items["load_timeout"].HintText; !strings.Contains(hint, "duration") {
		t.Errorf("hint for a bad timeout: %q", hint)
	}
}

// On a desktop with no tray icons the window says once, at its top, that
// closing it quits; with a tray it says nothing.
func TestNoTrayNotice(t *testing.T) {
	for _, noTray := range []bool{true, false} {
		isolateAutostart(t)
		a := test.NewTempApp(t)
		k := newFake(testSnapshot())
		ctx, cancel := context.WithCancel(context.Background())
		u := newUI(ctx, a, Options{Keeper: k, Config: config.Default(), ConfigPath: filepath.Join(t.TempDir(), "config.toml"), NoTray: noTray})
		u.apply(k.Snapshot())
		if u.noTray.Visible() != noTray || !strings.Contains(u.noTray.Text, "closing this window quits") {
			t.Errorf("no tray %v: notice shown %v, %q", noTray, u.noTray.Visible(), u.noTray.Text)
		}
		cancel()
		u.wg.Wait()
	}
}
