package app

import (
	"image/color"
	"math"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/vramkeeper/vramkeeper/internal/plot"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// segKind is what a part of the card bar stands for.
type segKind int

const (
	segModel   segKind = iota // one of our loaded models
	segRuntime                // what the driver counts for Ollama beyond its models
	segOthers                 // other programs
	segFree                   // free
)

// barSegment is one part of the card bar, left to right.
type barSegment struct {
	Kind  segKind
	Name  string
	Bytes uint64
}

// cardBar is what the stacked bar shows for a snapshot: the parts in
// order, the byte count the full width stands for, and the budget.
type cardBar struct {
	Segments []barSegment
	Scale    uint64
	Budget   uint64
	Used     uint64 // what our models use, against the budget
	// Title, when set, names one card of several; its bar has no budget
	// line (the budget is over all of them) and the title leads the legend.
	Title string
}

// runtimeLabel names the part of the card the driver counts for Ollama
// beyond its models' sizes (its CUDA context, its pools).
const runtimeLabel = "Ollama runtime"

// cardBarOf lays the card out: each loaded model (by name, so a model keeps
// its place), Ollama's runtime when the driver counts more than the models,
// other programs, free. The scale is the card, or more when the numbers
// add up to more (a card size guessed too small).
func cardBarOf(s manager.Snapshot) cardBar {
	var b cardBar
	loaded := s.LoadedModels()
	slices.SortFunc(loaded, func(x, y manager.ModelView) int { return strings.Compare(x.Name, y.Name) })
	var ours uint64
	for _, m := range loaded {
		size := m.SizeBytes
		if size == 0 {
			size = m.EstimateBytes
		}
		ours += size
		b.Segments = append(b.Segments, barSegment{segModel, m.Name, size})
	}
	if s.VRAM.Measured() && s.VRAM.Total > 0 {
		// What the driver counts as used, less other programs and our
		// models' sizes, is Ollama's own.
		used := s.VRAM.Total - min(s.Free, s.VRAM.Total)
		if rt := int64(used) - int64(s.Others) - int64(ours); rt > 0 {
			b.Segments = append(b.Segments, barSegment{segRuntime, runtimeLabel, uint64(rt)})
		}
	}
	if s.Others > 0 {
		b.Segments = append(b.Segments, barSegment{segOthers, plot.OthersKey, s.Others})
	}
	var sum uint64
	for _, g := range b.Segments {
		sum += g.Bytes
	}
	free := s.Free
	if s.VRAM.Total > sum {
		free = min(free, s.VRAM.Total-sum)
	} else {
		free = 0
	}
	if free > 0 {
		b.Segments = append(b.Segments, barSegment{segFree, "free", free})
	}
	b.Scale = max(s.VRAM.Total, sum+free, s.Budget)
	b.Budget, b.Used = s.Budget, s.Used
	return b
}

// edges are the segments' left and right positions in a bar width wide:
// rounded from the running total, so the parts tile the bar without gaps
// and each is within a pixel of its share.
func (b cardBar) edges(width float32) []float32 {
	out := make([]float32, len(b.Segments)+1)
	if b.Scale == 0 {
		return out
	}
	var cum uint64
	for i, g := range b.Segments {
		cum += g.Bytes
		out[i+1] = float32(math.Round(float64(cum) / float64(b.Scale) * float64(width)))
	}
	return out
}

// budgetX is where the budget line sits in a bar width wide.
func (b cardBar) budgetX(width float32) float32 {
	if b.Scale == 0 {
		return width
	}
	return float32(math.Round(float64(b.Budget) / float64(b.Scale) * float64(width)))
}

// StackBar shows the card as one bar: each loaded model in its own colour
// with its name, Ollama's runtime, other programs and free, the budget as
// a line, and a legend with the sizes underneath.
type StackBar struct {
	widget.BaseWidget
	palette *plot.Palette
	bar     cardBar
}

// NewStackBar returns an empty bar; models take their colours from p,
// which the window shares with its chart.
func NewStackBar(p *plot.Palette) *StackBar {
	b := &StackBar{palette: p}
	b.ExtendBaseWidget(b)
	return b
}

// SetSnapshot shows a snapshot; it redraws only when the picture changes.
func (b *StackBar) SetSnapshot(s manager.Snapshot) { b.setBar(cardBarOf(s)) }

func (b *StackBar) setBar(bar cardBar) {
	if slices.Equal(bar.Segments, b.bar.Segments) && bar.Scale == b.bar.Scale && bar.Budget == b.bar.Budget &&
		bar.Used == b.bar.Used && bar.Title == b.bar.Title {
		return
	}
	b.bar = bar
	b.Refresh()
}

// ollamaLabel names what Ollama holds on one card of several: which of
// our models sits on which card, no driver says.
const ollamaLabel = "Ollama"

// perCardBars are one bar per card on a machine with several cards that
// Ollama uses: what Ollama holds there, other programs, free. With one
// card, none: the snapshot's bar is that card.
func perCardBars(s manager.Snapshot) []cardBar {
	var out []cardBar
	for _, c := range s.Cards {
		if c.Integrated {
			continue
		}
		b := cardBar{Scale: c.Total, Title: c.Name + " · " + card.SourceLabel(c.Source)}
		if ours := c.Used - min(c.Others, c.Used); ours > 0 {
			b.Segments = append(b.Segments, barSegment{segRuntime, ollamaLabel, ours})
		}
		if c.Others > 0 {
			b.Segments = append(b.Segments, barSegment{segOthers, plot.OthersKey, c.Others})
		}
		if free := c.Total - min(c.Used, c.Total); free > 0 {
			b.Segments = append(b.Segments, barSegment{segFree, "free", free})
		}
		b.Scale = max(b.Scale, c.Used)
		out = append(out, b)
	}
	if len(out) < 2 {
		return nil
	}
	return out
}

// CardBars is the card bar of a snapshot and, on a machine with several
// cards, one bar per card under it.
type CardBars struct {
	widget.BaseWidget
	box     *fyne.Container
	palette *plot.Palette
	total   *StackBar
	cards   []*StackBar
}

// NewCardBars returns the bars; models take their colours from p.
func NewCardBars(p *plot.Palette) *CardBars {
	total := NewStackBar(p)
	c := &CardBars{box: container.NewVBox(total), palette: p, total: total}
	c.ExtendBaseWidget(c)
	return c
}

// CreateRenderer is Fyne's.
func (c *CardBars) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(c.box) }

// SetSnapshot shows a snapshot, adding or dropping per-card bars as cards
// come and go.
func (c *CardBars) SetSnapshot(s manager.Snapshot) {
	c.total.SetSnapshot(s)
	bars := perCardBars(s)
	if len(bars) != len(c.cards) {
		c.cards = c.cards[:0]
		objects := []fyne.CanvasObject{c.total}
		for range bars {
			b := NewStackBar(c.palette)
			c.cards = append(c.cards, b)
			objects = append(objects, b)
		}
		c.box.Objects = objects
		c.box.Refresh()
		c.Refresh()
	}
	for i, b := range bars {
		c.cards[i].setBar(b)
	}
}

const (
	barHeight  = 28
	barOverrun = 4 // the budget line sticks out of the bar by this much
	legendGap  = 14
	swatchSize = 10
)

// CreateRenderer is Fyne's.
func (b *StackBar) CreateRenderer() fyne.WidgetRenderer {
	r := &stackBarRenderer{b: b, budget: canvas.NewRectangle(color.Black)}
	r.Refresh()
	return r
}

type stackBarRenderer struct {
	b      *StackBar
	rects  []*canvas.Rectangle
	labels []*canvas.Text
	// legend: the budget's swatch and text, then one per segment
	swatches []*canvas.Rectangle
	keys     []*canvas.Text
	budget   *canvas.Rectangle
	objects  []fyne.CanvasObject
}

func (r *stackBarRenderer) colorOf(g barSegment) color.Color {
	switch g.Kind {
	case segModel:
		return r.b.palette.Color(g.Name)
	case segRuntime:
		return color.RGBA{0x9a, 0xa5, 0xb4, 0xff}
	case segOthers:
		return plot.Light.Others
	}
	return theme.Color(theme.ColorNameInputBackground)
}

// Refresh rebuilds the parts from the bar's data.
func (r *stackBarRenderer) Refresh() {
	segs := r.b.bar.Segments
	r.rects, r.labels, r.swatches, r.keys = nil, nil, nil, nil
	fg := theme.Color(theme.ColorNameForeground)
	size := theme.CaptionTextSize()
	// The legend starts with the budget, the number people watch, so it
	// stays when a narrow window drops entries from the end.
	bar := r.b.bar
	lead := "budget " + usedOfBudget(bar.Used, bar.Budget) + " · card " + config.FormatBytes(bar.Scale)
	if bar.Title != "" {
		lead = bar.Title + " · " + config.FormatBytes(bar.Scale)
	}
	budget := canvas.NewText(lead, fg)
	budget.TextSize = size
	r.keys = append(r.keys, budget)
	r.swatches = append(r.swatches, canvas.NewRectangle(fg))
	for _, g := range segs {
		col := r.colorOf(g)
		r.rects = append(r.rects, canvas.NewRectangle(col))
		l := canvas.NewText("", textOn(col, fg))
		l.TextSize = size
		r.labels = append(r.labels, l)
		sw := canvas.NewRectangle(col)
		sw.StrokeColor, sw.StrokeWidth = theme.Color(theme.ColorNameSeparator), 1
		r.swatches = append(r.swatches, sw)
		k := canvas.NewText(g.Name+" "+config.FormatBytes(g.Bytes), fg)
		k.TextSize = size
		r.keys = append(r.keys, k)
	}
	r.budget.FillColor = fg

	// A new slice: the driver may still hold the last one.
	r.objects = nil
	for _, o := range r.rects {
		r.objects = append(r.objects, o)
	}
	for _, o := range r.labels {
		r.objects = append(r.objects, o)
	}
	r.objects = append(r.objects, r.budget)
	for i := range r.keys {
		r.objects = append(r.objects, r.swatches[i], r.keys[i])
	}
	r.Layout(r.b.Size())
	canvas.Refresh(r.b)
}

// textOn is black or white, whichever reads better on bg; fg on a
// background that is the theme's own (free).
func textOn(bg color.Color, fg color.Color) color.Color {
	c := color.RGBAModel.Convert(bg).(color.RGBA)
	if c.A < 0xff {
		return fg
	}
	// Rec. 601 luma: the perceived brightness.
	if 299*int(c.R)+587*int(c.G)+114*int(c.B) > 150*1000 {
		return color.Black
	}
	return color.White
}

func (r *stackBarRenderer) Layout(size fyne.Size) {
	bar := r.b.bar
	w := size.Width
	x := bar.edges(w)
	top := float32(barOverrun)
	pad := theme.InnerPadding() / 2
	for i, rect := range r.rects {
		rect.Move(fyne.NewPos(x[i], top))
		rect.Resize(fyne.NewSize(x[i+1]-x[i], barHeight))
		l := r.labels[i]
		l.Text = elide(bar.Segments[i].Name, x[i+1]-x[i]-2*pad, l.TextSize)
		ts := fyne.MeasureText(l.Text, l.TextSize, l.TextStyle)
		l.Move(fyne.NewPos(x[i]+pad, top+(barHeight-ts.Height)/2))
		l.Resize(ts)
	}
	bx := min(max(bar.budgetX(w), 1), w-1)
	r.budget.Move(fyne.NewPos(bx-1, 0))
	r.budget.Resize(fyne.NewSize(2, barHeight+2*barOverrun))
	r.budget.Hidden = bar.Title != ""

	// The legend: one line, entries left to right while they fit.
	lx, ly := float32(0), top+barHeight+barOverrun+theme.Padding()
	for i, k := range r.keys {
		ts := fyne.MeasureText(k.Text, k.TextSize, k.TextStyle)
		sw := r.swatches[i]
		fits := lx+swatchSize+4+ts.Width <= w
		sw.Hidden, k.Hidden = !fits, !fits
		if !fits {
			continue
		}
		if i == 0 {
			sw.Hidden = sw.Hidden || bar.Title != "" // a card's title has no line to stand for
			// The budget's swatch is a line, like the one on the bar.
			sw.Move(fyne.NewPos(lx+swatchSize/2-1, ly+(ts.Height-swatchSize)/2-1))
			sw.Resize(fyne.NewSize(2, swatchSize+2))
		} else {
			sw.Move(fyne.NewPos(lx, ly+(ts.Height-swatchSize)/2))
			sw.Resize(fyne.NewSize(swatchSize, swatchSize))
		}
		k.Move(fyne.NewPos(lx+swatchSize+4, ly))
		k.Resize(ts)
		lx += swatchSize + 4 + ts.Width + legendGap
	}
}

// elide shortens s with "…" to fit width at size; "" when not even the
// ellipsis fits.
func elide(s string, width, size float32) string {
	style := fyne.TextStyle{}
	if fyne.MeasureText(s, size, style).Width <= width {
		return s
	}
	r := []rune(s)
	// The longest prefix that fits with the ellipsis.
	lo, hi := 0, len(r)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fyne.MeasureText(string(r[:mid])+"…", size, style).Width <= width {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo == 0 {
		return ""
	}
	return string(r[:lo]) + "…"
}

func (r *stackBarRenderer) MinSize() fyne.Size {
	th := fyne.MeasureText("Mg", theme.CaptionTextSize(), fyne.TextStyle{}).Height
	return fyne.NewSize(120, barOverrun+barHeight+barOverrun+theme.Padding()+th)
}

func (r *stackBarRenderer) Objects() []fyne.CanvasObject { return r.objects }
func (r *stackBarRenderer) Destroy()                     {}
