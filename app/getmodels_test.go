package app

import (
	"reflect"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/vramkeeper/vramkeeper/internal/library"
	"github.com/vramkeeper/vramkeeper/manager"
)

// The offer puts what fits the budget first, says what each needs, and
// marks what is installed.
func TestSuggestions(t *testing.T) {
	s := manager.Snapshot{Budget: 3 * gib, Models: []manager.ModelView{{Name: "qwen2.5:0.5b"}}}
	models := library.Models()[:5] // 0.5b, 1b, 3b, 7b, 8b
	needs := map[string]uint64{"qwen2.5:0.5b": gib, "llama3.2:1b": 2 * gib, "llama3.2:3b": 4 * gib, "qwen2.5:7b": 5 * gib}
	var got []string
	for _, r := range Suggestions(s, models, needs) {
		got = append(got, strings.Join([]string{r.Name, r.For, r.Download, r.Need, r.FitsText()}, " | "))
	}
	want := []string{
		"qwen2.5:0.5b | chat | 398 MB | 1.0 GiB | installed",
		"llama3.2:1b | chat | 1.3 GB | 2.0 GiB | fits",
		"llama3.2:3b | chat | 2.0 GB | 4.0 GiB | does not fit",
		"qwen2.5:7b | chat | 4.7 GB | 5.0 GiB | does not fit",
		"llama3.1:8b | chat | 4.9 GB | ? | ?",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("suggestions\n%q\nwant\n%q", got, want)
	}
}

// A registry on this machine serves plain HTTP: its models are pulled as
// with --insecure; any other name is not.
func TestLocalRegistry(t *testing.T) {
	for name, want := range map[string]bool{
		"127.0.0.1:5000/library/tiny:latest": true, "localhost:5000/team/m": true, "[::1]:5000/a/b": true,
		"llama3.2:3b": false, "hf.co/user/model:Q4_K_M": false, "registry.example:5000/a/b": false, "team/model": false,
	} {
		if got := localRegistry(name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

// emptyHarness is the window with Ollama up and no models.
func emptyHarness(t *testing.T) *harness {
	h := newHarness(t)
	s := h.k.Snapshot()
	s.Models, s.Used = nil, 0
	h.k.mu.Lock()
	h.k.snap = s
	h.k.mu.Unlock()
	h.u.apply(s)
	return h
}

// offerButton renders the offer's row for model and returns its button.
func (h *harness) offerButton(t *testing.T, model string) *rowButton {
	t.Helper()
	g := h.u.get
	for r, row := range g.rows {
		if row.Name == model {
			c := g.table.CreateCell()
			g.table.UpdateCell(widget.TableCellID{Row: r, Col: len(suggestTitles) - 1}, c)
			return c.(*fyne.Container).Objects[1].(*rowButton)
		}
	}
	t.Fatalf("no offer row for %s in %+v", model, g.rows)
	return nil
}

// With no models, the Models tab offers some with what they need here; a
// download shows its progress and can be cancelled (nothing installed),
// and a finished one ends with the model in the table.
func TestEmptyStateOffersModels(t *testing.T) {
	h := emptyHarness(t)
	g := h.u.get
	if !g.panel.Visible() || h.u.table.Visible() {
		t.Fatalf("offer shown %v, table shown %v", g.panel.Visible(), h.u.table.Visible())
	}
	if !strings.HasPrefix(g.intro.Text, "Ollama is running, with no models yet. Download one") {
		t.Errorf("intro %q", g.intro.Text)
	}
	if len(g.rows) != len(library.Models()) || !g.rows[0].Fits || g.rows[len(g.rows)-1].Fits {
		t.Errorf("offer rows %+v: want every model, those that fit the 7 GiB budget first", g.rows)
	}
	if g.get.Disabled() == false {
		t.Error("Download is enabled with no name typed")
	}

	// Held halfway: the header shows the progress; Cancel stops it.
	h.k.pullGate, h.k.pullHalf = make(chan struct{}), make(chan struct{}, 1)
	test.Tap(h.offerButton(t, "llama3.2:3b"))
	<-h.k.pullHalf
	if !g.progress.Visible() || g.line.Text != "Downloading llama3.2:3b: 1.0 GiB of 2.0 GiB" || g.bar.Value != 0.5 {
		t.Errorf("progress shown %v: %q at %.2f", g.progress.Visible(), g.line.Text, g.bar.Value)
	}
	if !h.offerButton(t, "qwen2.5:0.5b").Disabled() {
		t.Error("a second download can start while one runs")
	}
	test.Tap(g.cancelB)
	h.u.wg.Wait()
	if g.progress.Visible() || h.u.status.Text != "Stopped downloading llama3.2:3b; nothing was installed." || len(h.u.rows) != 0 {
		t.Errorf("after Cancel: progress shown %v, status %q, rows %d", g.progress.Visible(), h.u.status.Text, len(h.u.rows))
	}

	// A name typed in, downloaded to the end.
	h.k.pullGate = nil
	test.Type(g.name, "gemma3:4b")
	test.Tap(g.get)
	h.u.wg.Wait()
	if g.panel.Visible() || !h.u.table.Visible() || len(h.u.rows) != 1 || h.u.rows[0].Name != "gemma3:4b" {
		t.Errorf("after the download: offer shown %v, table shown %v, rows %+v", g.panel.Visible(), h.u.table.Visible(), h.u.rows)
	}
	if h.u.status.Text != "Downloaded gemma3:4b. Load it from its row below." {
		t.Errorf("status %q", h.u.status.Text)
	}
	if got := h.k.Calls(); strings.Join(got, ",") != "pull llama3.2:3b,pull gemma3:4b" {
		t.Errorf("calls %v", got)
	}
	// Later, Get models… shows the offer again, with a way back.
	test.Tap(h.u.getButton)
	if !g.panel.Visible() || !g.back.Visible() {
		t.Errorf("Get models…: offer shown %v, Back shown %v", g.panel.Visible(), g.back.Visible())
	}
	test.Tap(g.back)
	if g.panel.Visible() || !h.u.table.Visible() {
		t.Error("Back did not show the table")
	}
}
