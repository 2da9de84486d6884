package app

import (
	"image/color"
	"math"
	"slices"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/vramkeeper/vramkeeper/internal/plot"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/card"
)

const mib = 1 << 20

// loaded is a loaded model of the given size as the manager reports it.
func loaded(name string, size uint64) manager.ModelView {
	return manager.ModelView{Name: name, Loaded: true, State: manager.Loaded, SizeBytes: size, EstimateBytes: size}
}

// twoModels: an 8 GiB NVIDIA card, a 7 GiB budget, a 7B coder and a 3B chat
// model loaded, 1 GiB held by other programs, 300 MiB of Ollama runtime,
// 468 MiB free.
func twoModels() manager.Snapshot {
	coder, chat := uint64(4400*mib), uint64(2000*mib)
	used := coder + chat
	return manager.Snapshot{
		VRAM:   card.VRAM{Source: card.SourceNVML, Total: 8 * gib},
		Budget: 7 * gib, Used: used, Others: gib,
		Free:     8*gib - used - gib - 300*mib,
		OllamaUp: true,
		Models: []manager.ModelView{
			loaded("llama3.2:3b", chat),
			{Name: "mistral:7b", EstimateBytes: 5 * gib},
			loaded("qwen2.5-coder:7b", coder),
		},
	}
}

func TestCardBarOf(t *testing.T) {
	estimated := testSnapshot()
	noSize := estimated
	noSize.Models = slices.Clone(noSize.Models)
	noSize.Models[2].SizeBytes = 0 // adopted before its size is known
	overCard := manager.Snapshot{VRAM: card.VRAM{Source: card.SourceEstimated, Total: 8 * gib}, Budget: 7 * gib,
		Used: 9 * gib, Models: []manager.ModelView{loaded("big:13b", 9*gib)}}
	noCard := manager.Snapshot{VRAM: card.VRAM{Source: card.SourceEstimated}, Budget: 2 * gib,
		Used: gib, Models: []manager.ModelView{loaded("small:1b", gib)}}
	tests := []struct {
		name  string
		s     manager.Snapshot
		want  []barSegment
		scale uint64
	}{
		{"estimated: one model and free", estimated, []barSegment{
			{segModel, "qwen2.5:7b", 46 * gib / 10}, {segFree, "free", 8*gib - 46*gib/10},
		}, 8 * gib},
		{"the estimate stands in for a size not known yet", noSize, []barSegment{
			{segModel, "qwen2.5:7b", 46 * gib / 10}, {segFree, "free", 8*gib - 46*gib/10},
		}, 8 * gib},
		{"NVML: models by name, runtime, others, free", twoModels(), []barSegment{
			{segModel, "llama3.2:3b", 2000 * mib}, {segModel, "qwen2.5-coder:7b", 4400 * mib},
			{segRuntime, runtimeLabel, 300 * mib}, {segOthers, plot.OthersKey, gib}, {segFree, "free", 468 * mib},
		}, 8 * gib},
		{"more than the card: no free, the scale grows", overCard, []barSegment{{segModel, "big:13b", 9 * gib}}, 9 * gib},
		{"no card size: the budget is the scale", noCard, []barSegment{{segModel, "small:1b", gib}}, 2 * gib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cardBarOf(tt.s)
			if !slices.Equal(got.Segments, tt.want) || got.Scale != tt.scale {
				t.Errorf("segments %+v scale %d,\nwant %+v scale %d", got.Segments, got.Scale, tt.want, tt.scale)
			}
		})
	}
}

// barParts renders a bar width wide and returns its renderer.
func barParts(t *testing.T, b *StackBar, width float32) *stackBarRenderer {
	t.Helper()
	w := test.NewTempWindow(t, b)
	w.SetPadded(false)
	w.Resize(fyne.NewSize(width, b.MinSize().Height))
	r := test.TempWidgetRenderer(t, b).(*stackBarRenderer)
	if got := b.Size().Width; got != width {
		t.Fatalf("bar is %g wide, want %g", got, width)
	}
	return r
}

func TestStackBarLayout(t *testing.T) {
	test.NewTempApp(t)
	s := twoModels()
	for _, width := range []float32{600, 333} {
		b := NewStackBar(plot.NewPalette())
		b.SetSnapshot(s)
		r := barParts(t, b, width)
		segs := cardBarOf(s).Segments
		if len(r.rects) != len(segs) {
			t.Fatalf("%d rectangles for %d parts", len(r.rects), len(segs))
		}
		x := float32(0)
		for i, g := range segs {
			rect := r.rects[i]
			want := float64(g.Bytes) / float64(8*gib) * float64(width)
			if math.Abs(float64(rect.Size().Width)-want) > 1 {
				t.Errorf("width %g: %s is %g wide, want %.1f (its share of the card)", width, g.Name, rect.Size().Width, want)
			}
			if rect.Position().X != x {
				t.Errorf("width %g: %s starts at %g, want %g (right after the part before)", width, g.Name, rect.Position().X, x)
			}
			x = rect.Position().X + rect.Size().Width
		}
		if x != width {
			t.Errorf("width %g: the parts end at %g", width, x)
		}
		line := r.budget.Position().X + r.budget.Size().Width/2
		if want := 7.0 / 8 * float64(width); math.Abs(float64(line)-want) > 1 {
			t.Errorf("width %g: budget line at %g, want %.1f (7 of 8 GiB)", width, line, want)
		}
	}
}

func TestStackBarColours(t *testing.T) {
	test.NewTempApp(t)
	p := plot.NewPalette()
	b := NewStackBar(p)
	s := testSnapshot()
	b.SetSnapshot(s)
	r := barParts(t, b, 600)
	colourOf := func(name string) color.Color {
		for i, g := range b.bar.Segments {
			if g.Name == name {
				return r.rects[i].FillColor
			}
		}
		t.Fatalf("no part for %s", name)
		return nil
	}
	first := colourOf("qwen2.5:7b")
	// Another model loads: it sorts before qwen and moves it right, but
	// qwen keeps its colour, and the newcomer gets another.
	s.Models = slices.Clone(s.Models)
	s.Models[1] = loaded("llama3.2:3b", 2*gib)
	b.SetSnapshot(s)
	if got := colourOf("qwen2.5:7b"); got != first {
		t.Errorf("qwen2.5:7b changed colour from %v to %v when another model loaded", first, got)
	}
	if colourOf("llama3.2:3b") == first {
		t.Error("two loaded models share a colour")
	}
	if first != color.Color(p.Color("qwen2.5:7b")) {
		t.Error("the bar's colour is not the palette's, which the chart uses")
	}
}

func TestStackBarElides(t *testing.T) {
	test.NewTempApp(t)
	s := twoModels()
	s.Models = slices.Clone(s.Models)
	s.Models[2] = loaded("hf.co/bartowski/Qwen2.5-Coder-7B-Instruct-GGUF:Q4_K_M", 4400*mib)
	tests := []struct {
		width float32
		want  map[string]string // part → how its label reads: "full", "elided" or "none"
	}{
		{1200, map[string]string{"llama3.2:3b": "full", s.Models[2].Name: "full"}},
		{500, map[string]string{"llama3.2:3b": "full", s.Models[2].Name: "elided"}},
		{120, map[string]string{runtimeLabel: "none"}},
	}
	for _, tt := range tests {
		b := NewStackBar(plot.NewPalette())
		b.SetSnapshot(s)
		r := barParts(t, b, tt.width)
		for i, g := range b.bar.Segments {
			l, rect := r.labels[i], r.rects[i]
			if l.Text != "" && fyne.MeasureText(l.Text, l.TextSize, l.TextStyle).Width > rect.Size().Width {
				t.Errorf("width %g: label %q overflows its %g-wide part", tt.width, l.Text, rect.Size().Width)
			}
			want, ok := tt.want[g.Name]
			if !ok {
				continue
			}
			got := "none"
			switch {
			case l.Text == g.Name:
				got = "full"
			case strings.HasSuffix(l.Text, "…") && strings.HasPrefix(g.Name, strings.TrimSuffix(l.Text, "…")):
				got = "elided"
			case l.Text != "":
				got = "wrong: " + l.Text
			}
			if got != want {
				t.Errorf("width %g: %s label reads %q (%s), want %s", tt.width, g.Name, l.Text, got, want)
			}
		}
	}
}

func TestStackBarLegend(t *testing.T) {
	test.NewTempApp(t)
	b := NewStackBar(plot.NewPalette())
	b.SetSnapshot(twoModels())
	r := barParts(t, b, 1100)
	var shown []string
	for _, k := range r.keys {
		if !k.Hidden {
			shown = append(shown, k.Text)
		}
	}
	want := []string{"budget 6.2 / 7.0 GiB · card 8.0 GiB", "llama3.2:3b 2.0 GiB", "qwen2.5-coder:7b 4.3 GiB", "Ollama runtime 300 MiB", "other programs 1.0 GiB", "free 468 MiB"}
	if !slices.Equal(shown, want) {
		t.Errorf("legend %q,\nwant %q", shown, want)
	}
	// Narrow: entries that do not fit are left out, none is cut, and the
	// budget stays.
	r = barParts(t, barShowing(twoModels()), 300)
	for _, k := range r.keys {
		if !k.Hidden && k.Position().X+k.Size().Width > 300 {
			t.Errorf("legend entry %q runs past the bar's end", k.Text)
		}
	}
	if r.keys[0].Hidden {
		t.Error("the budget left the legend of a narrow bar")
	}
}

// barShowing is a bar showing s, with a palette of its own.
func barShowing(s manager.Snapshot) *StackBar {
	b := NewStackBar(plot.NewPalette())
	b.SetSnapshot(s)
	return b
}

func TestStackBarImage(t *testing.T) {
	test.NewTempApp(t)
	b := barShowing(twoModels())
	w := test.NewTempWindow(t, b)
	w.Resize(fyne.NewSize(720, b.MinSize().Height+2*8))
	test.AssertImageMatches(t, "stackbar.png", w.Canvas().Capture())
}

// On a machine with several cards each gets its bar: what Ollama holds
// there, other programs, free, and no budget line (the budget is over the
// cards); with one card there is none but the snapshot's.
func TestPerCardBars(t *testing.T) {
	two := twoModels()
	two.Cards = []manager.CardView{
		{Card: card.Card{Name: "AMD Radeon RX 7600", Source: "amdgpu", Total: 8 * gib, Used: 5 * gib}, Others: 3 * gib},
		{Card: card.Card{Name: "AMD Radeon RX 6700 XT", Source: "amdgpu", Total: 12 * gib, Used: 20 * mib}, Others: 20 * mib},
		{Card: card.Card{Name: "AMD Radeon 780M Graphics", Source: "amdgpu", Total: 512 * mib, Used: 170 * mib, Integrated: true}},
	}
	bars := perCardBars(two)
	want := []cardBar{
		{Title: "AMD Radeon RX 7600 · amdgpu (kernel)", Scale: 8 * gib, Segments: []barSegment{
			{segRuntime, ollamaLabel, 2 * gib}, {segOthers, plot.OthersKey, 3 * gib}, {segFree, "free", 3 * gib}}},
		{Title: "AMD Radeon RX 6700 XT · amdgpu (kernel)", Scale: 12 * gib, Segments: []barSegment{
			{segOthers, plot.OthersKey, 20 * mib}, {segFree, "free", 12*gib - 20*mib}}},
	}
	if len(bars) != len(want) {
		t.Fatalf("%d bars, want %d", len(bars), len(want))
	}
	for i := range want {
		if bars[i].Title != want[i].Title || bars[i].Scale != want[i].Scale || !slices.Equal(bars[i].Segments, want[i].Segments) {
			t.Errorf("bar %d = %+v,\nwant %+v", i, bars[i], want[i])
		}
	}
	one := twoModels()
	one.Cards = two.Cards[:1]
	if bars := perCardBars(one); bars != nil {
		t.Errorf("one card got %d bars of its own", len(bars))
	}

	test.NewTempApp(t)
	cb := NewCardBars(plot.NewPalette())
	cb.SetSnapshot(two)
	if len(cb.box.Objects) != 3 {
		t.Fatalf("%d bars shown for two cards, want the total and one per card", len(cb.box.Objects))
	}
	r := barParts(t, cb.cards[0], 720)
	if !r.budget.Hidden || r.keys[0].Text != "AMD Radeon RX 7600 · amdgpu (kernel) · 8.0 GiB" {
		t.Errorf("a card's bar: budget line hidden %v, legend leads with %q", r.budget.Hidden, r.keys[0].Text)
	}
	cb.SetSnapshot(one)
	if len(cb.box.Objects) != 1 {
		t.Errorf("%d bars after a card left, want 1", len(cb.box.Objects))
	}
}
