// Package plot draws the VRAM timeline as a chart: our models' bytes
// stacked by model, other programs' on top, the budget as a dashed line and
// marks for loads, evictions and yields. Layout turns a timeline window
// into shapes in a plain coordinate space; the same shapes become an SVG
// (WriteSVG), an image (Image, for PNG files and the window's chart
// widget) or a file (WriteFile). No GUI toolkit is imported here.
package plot

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// Theme is the chart's colours besides the models'.
type Theme struct {
	Background, Text, Grid, Budget, Total, Others color.RGBA
}

// Light is the theme of written files.
var Light = Theme{
	Background: color.RGBA{0xff, 0xff, 0xff, 0xff},
	Text:       color.RGBA{0x22, 0x22, 0x22, 0xff},
	Grid:       color.RGBA{0xe4, 0xe4, 0xe4, 0xff},
	Budget:     color.RGBA{0x10, 0x10, 0x10, 0xff},
	Total:      color.RGBA{0x9a, 0x9a, 0x9a, 0xff},
	Others:     color.RGBA{0x5b, 0x6b, 0x80, 0xff},
}

// markColors are the marks' colours.
var markColors = map[timeline.MarkKind]color.RGBA{
	timeline.MarkLoad:       {0x2e, 0x7d, 0x32, 0xff},
	timeline.MarkEviction:   {0xd8, 0x43, 0x15, 0xff},
	timeline.MarkUnload:     {0x75, 0x75, 0x75, 0xff},
	timeline.MarkFailedLoad: {0xc6, 0x28, 0x28, 0xff},
	timeline.MarkYield:      {0x6a, 0x1b, 0x9a, 0xff},
	timeline.MarkRestore:    {0x15, 0x65, 0xc0, 0xff},
}

// markWords are how a mark reads in the legend and the hover text.
var markWords = map[timeline.MarkKind]string{
	timeline.MarkLoad:       "load",
	timeline.MarkEviction:   "eviction",
	timeline.MarkUnload:     "unload",
	timeline.MarkFailedLoad: "failed load",
	timeline.MarkYield:      "yield",
	timeline.MarkRestore:    "restore",
}

// Options shape a chart. Zero values take the defaults.
type Options struct {
	// Width and Height in units (SVG pixels; Fyne units for the widget).
	Width, Height float64
	// From and To bound the time axis; a zero To is the window's newest
	// entry, a zero From is To − Span.
	From, To time.Time
	Span     time.Duration // default timeline.DefaultSpan
	// Colors are the models' colours; models missing here get theirs from
	// a fresh Palette in name order.
	Colors   map[string]color.RGBA
	Theme    *Theme         // default Light
	Location *time.Location // for the time labels; default time.Local
	Title    string         // drawn before the legend when set
	// Empty is what the plot says without samples; default "No samples in
	// this hour".
	Empty string
}

// Sizes of the chart's furniture, in units.
const (
	DefaultWidth  = 960
	DefaultHeight = 360
	fontSize      = 11
	legendH       = 18 // the legend row
	glyphH        = 10 // the row of mark glyphs above the plot
	marginL       = 60 // room for "16.0 GiB"
	marginR       = 12
	marginB       = 20 // room for "12:05"
	glyphR        = 4  // a mark glyph's half size
)

// OthersKey is the Key of other programs' area and legend entry (no model
// name holds a space).
const OthersKey = "other programs"

// Point is a position in units, y pointing down.
type Point struct{ X, Y float64 }

// Rect is an axis-aligned rectangle.
type Rect struct{ Min, Max Point }

// Dx and Dy are the rectangle's width and height.
func (r Rect) Dx() float64 { return r.Max.X - r.Min.X }
func (r Rect) Dy() float64 { return r.Max.Y - r.Min.Y }

// ShapeKind says how a Shape draws.
type ShapeKind int

const (
	// KindRect fills Box.
	KindRect ShapeKind = iota
	// KindArea fills each path of Paths as a closed polygon.
	KindArea
	// KindLine strokes each path of Paths, dashed when Dash is set.
	KindLine
	// KindText writes Text at At (the baseline) with Anchor.
	KindText
)

// Anchor is where a text sits against its point.
type Anchor string

const (
	AnchorStart  Anchor = "start"
	AnchorMiddle Anchor = "middle"
	AnchorEnd    Anchor = "end"
)

// Shape is one thing to draw. Class and Key say what it shows, for the
// SVG's class and data-key attributes and for tests: "area" (Key: the
// model, or OthersKey), "budget", "total", "mark" (Key: the mark kind),
// "grid", "tick", "legend", "title", "empty".
type Shape struct {
	Kind  ShapeKind
	Class string
	Key   string
	// Title is hover text (an SVG <title>).
	Title  string
	Fill   color.RGBA
	Stroke color.RGBA
	Width  float64
	Dash   []float64
	Box    Rect
	Paths  [][]Point
	At     Point
	Text   string
	Anchor Anchor
	Size   float64
}

// Chart is a laid-out chart.
type Chart struct {
	Width, Height float64
	Background    color.RGBA
	// Plot is the area inside the axes.
	Plot     Rect
	From, To time.Time
	// Max is the byte count at the top of the plot.
	Max    uint64
	Shapes []Shape

	samples []timeline.Sample // the ones in [From, To], for At
	marks   []timeline.Mark
	series  []string   // models, bottom to top
	cols    [][]column // the samples per run, one column per unit of width
	loc     *time.Location
}

// X is the horizontal position of a time.
func (c *Chart) X(t time.Time) float64 {
	span := c.To.Sub(c.From)
	if span <= 0 {
		return c.Plot.Min.X
	}
	return c.Plot.Min.X + float64(t.Sub(c.From))/float64(span)*c.Plot.Dx()
}

// Y is the vertical position of a byte count.
func (c *Chart) Y(b uint64) float64 {
	return c.Plot.Max.Y - float64(b)/float64(max(c.Max, 1))*c.Plot.Dy()
}

// TimeAt is the time at a horizontal position.
func (c *Chart) TimeAt(x float64) time.Time {
	if c.Plot.Dx() <= 0 {
		return c.From
	}
	f := (x - c.Plot.Min.X) / c.Plot.Dx()
	return c.From.Add(time.Duration(f * float64(c.To.Sub(c.From))))
}

// Layout lays a window out as a chart.
func Layout(w timeline.Window, o Options) *Chart {
	if o.Width <= 0 {
		o.Width = DefaultWidth
	}
	if o.Height <= 0 {
		o.Height = DefaultHeight
	}
	if o.Span <= 0 {
		o.Span = timeline.DefaultSpan
	}
	if o.Theme == nil {
		o.Theme = &Light
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.To.IsZero() {
		o.To = w.Latest()
		if o.To.IsZero() {
			o.To = time.Now()
		}
	}
	if o.From.IsZero() || !o.From.Before(o.To) {
		o.From = o.To.Add(-o.Span)
	}
	c := &Chart{
		Width: o.Width, Height: o.Height, Background: o.Theme.Background,
		From: o.From, To: o.To, loc: o.Location,
	}
	top := float64(legendH + glyphH)
	c.Plot = Rect{Point{marginL, top}, Point{max(o.Width-marginR, marginL+1), max(o.Height-marginB, top+1)}}
	for _, s := range w.Samples {
		if !s.Time.Before(o.From) && !s.Time.After(o.To) {
			c.samples = append(c.samples, s)
		}
	}
	for _, m := range w.Marks {
		if !m.Time.Before(o.From) && !m.Time.After(o.To) {
			c.marks = append(c.marks, m)
		}
	}
	c.series = timeline.Window{Samples: c.samples}.Models()
	colors := o.Colors
	var missing []string
	for _, n := range c.series {
		if _, ok := colors[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		fresh := NewPalette().Colors(missing)
		for n, col := range colors {
			fresh[n] = col
		}
		colors = fresh
	}

	for _, s := range c.samples {
		c.Max = max(c.Max, addSat(s.Ours(), s.Others), s.Budget, s.Total)
	}
	step := byteStep(c.Max, int(c.Plot.Dy()/28))
	if c.Max <= math.MaxUint64-step {
		c.Max = max((c.Max+step-1)/step*step, step)
	}

	c.grid(step, o.Theme)
	c.areas(colors, o.Theme)
	c.lines(o.Theme)
	c.markShapes()
	if len(c.samples) == 0 {
		if o.Empty == "" {
			o.Empty = "No samples in this hour"
		}
		c.Shapes = append(c.Shapes, Shape{
			Kind: KindText, Class: "empty", Text: o.Empty, Fill: o.Theme.Text, Size: fontSize + 2,
			At: Point{(c.Plot.Min.X + c.Plot.Max.X) / 2, (c.Plot.Min.Y + c.Plot.Max.Y) / 2}, Anchor: AnchorMiddle,
		})
	}
	c.legend(o.Title, colors, o.Theme)
	return c
}

// addSat adds without wrapping around: nonsense sizes from a broken
// sender draw off the scale rather than as small numbers.
func addSat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// byteStep is the y axis' tick step: the smallest power of two that keeps
// at most n ticks up to top, so ticks land on whole GiB or MiB fractions.
func byteStep(top uint64, n int) uint64 {
	if top == 0 {
		return 1 << 30
	}
	n = max(n, 2)
	step := uint64(1 << 20)
	for top/step > uint64(n) && step < 1<<62 {
		step *= 2
	}
	return step
}

// timeSteps are the time axis' candidate tick steps.
var timeSteps = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

func (c *Chart) grid(step uint64, th *Theme) {
	for i := uint64(0); i <= c.Max/step; i++ {
		b := i * step
		y := c.Y(b)
		c.Shapes = append(c.Shapes,
			Shape{Kind: KindLine, Class: "grid", Stroke: th.Grid, Width: 1, Paths: [][]Point{{{c.Plot.Min.X, y}, {c.Plot.Max.X, y}}}},
			Shape{Kind: KindText, Class: "tick", Text: config.FormatBytes(b), Fill: th.Text, Size: fontSize,
				At: Point{c.Plot.Min.X - 6, y + fontSize/3}, Anchor: AnchorEnd},
		)
	}
	n := max(int(c.Plot.Dx()/70), 1)
	span := c.To.Sub(c.From)
	ts := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= time.Duration(n) {
			ts = s
			break
		}
	}
	// Ticks on whole steps of the local clock (12:00, 12:10, …).
	_, off := c.From.In(c.loc).Zone()
	shift := time.Duration(off) * time.Second
	first := c.From.Add(shift).Truncate(ts).Add(-shift)
	for i := range int(span/ts) + 2 { // counted: times near the ends of time.Time do not add up
		t := first.Add(time.Duration(i) * ts)
		if t.Before(c.From) || t.After(c.To) {
			continue
		}
		x := c.X(t)
		label := Shape{Kind: KindText, Class: "tick", Text: t.In(c.loc).Format("15:04"), Fill: th.Text, Size: fontSize,
			At: Point{x, c.Plot.Max.Y + fontSize + 3}, Anchor: AnchorMiddle}
		if x+textWidth(label.Text, fontSize)/2 > c.Width-2 {
			// The last label would run off the edge: end it there.
			label.At.X, label.Anchor = c.Width-2, AnchorEnd
		}
		c.Shapes = append(c.Shapes,
			Shape{Kind: KindLine, Class: "grid", Stroke: th.Grid, Width: 1, Paths: [][]Point{{{x, c.Plot.Min.Y}, {x, c.Plot.Max.Y}}}},
			label,
		)
	}
}

// runs splits the samples where the poll stopped (the app was not running,
// or Ollama was away): a gap of more than three usual intervals, and at
// least 10 s, ends a run, so no area is drawn across it.
func runs(ss []timeline.Sample) [][]timeline.Sample {
	if len(ss) == 0 {
		return nil
	}
	var gaps []time.Duration
	for i := 1; i < len(ss); i++ {
		gaps = append(gaps, ss[i].Time.Sub(ss[i-1].Time))
	}
	limit := 10 * time.Second
	if len(gaps) > 0 {
		slices.Sort(gaps)
		limit = max(limit, 3*gaps[len(gaps)/2])
	}
	var out [][]timeline.Sample
	start := 0
	for i := 1; i <= len(ss); i++ {
		if i == len(ss) || ss[i].Time.Sub(ss[i-1].Time) > limit {
			out = append(out, ss[start:i])
			start = i
		}
	}
	return out
}

// column is one horizontal position of a run: the stack's levels (0, then
// the top of each model, then of others), the budget and the card.
type column struct {
	x      float64
	levels []uint64
	budget uint64
	total  uint64
}

// columns turns a run into at most one column per unit of width: where
// samples are denser than that, each level is the highest it reached in
// the column, so a short spike still shows. A run of one sample is drawn
// one unit wide.
func (c *Chart) columns(run []timeline.Sample) []column {
	var out []column
	for _, s := range run {
		col := column{x: c.X(s.Time), budget: s.Budget, total: s.Total, levels: make([]uint64, len(c.series)+2)}
		var sum uint64
		for i, name := range c.series {
			sum = addSat(sum, s.Models[name])
			col.levels[i+1] = sum
		}
		col.levels[len(c.series)+1] = addSat(sum, s.Others)
		if n := len(out); n > 0 && math.Floor(out[n-1].x) == math.Floor(col.x) {
			last := &out[n-1]
			for i := range col.levels {
				last.levels[i] = max(last.levels[i], col.levels[i])
			}
			last.budget, last.total = col.budget, col.total
			continue
		}
		out = append(out, col)
	}
	if len(out) == 1 {
		one := out[0]
		one.x += 1
		out = append(out, one)
	}
	return out
}

// present cuts a run into the stretches where series k holds bytes; a
// stretch of one column is drawn one unit wide.
func present(run []column, k int) [][]column {
	var out [][]column
	start := -1
	for i := 0; i <= len(run); i++ {
		on := i < len(run) && run[i].levels[k+1] > run[i].levels[k]
		switch {
		case on && start < 0:
			start = i
		case !on && start >= 0:
			part := run[start:i]
			if len(part) == 1 {
				one := part[0]
				one.x++
				part = []column{part[0], one}
			}
			out = append(out, part)
			start = -1
		}
	}
	return out
}

func (c *Chart) areas(colors map[string]color.RGBA, th *Theme) {
	for _, r := range runs(c.samples) {
		c.cols = append(c.cols, c.columns(r))
	}
	keys := append(slices.Clone(c.series), OthersKey)
	for k, key := range keys {
		var paths [][]Point
		for _, run := range c.cols {
			// One polygon per stretch where the series holds bytes, so a
			// model's area starts where it was loaded and ends where it
			// went.
			for _, part := range present(run, k) {
				p := make([]Point, 0, 2*len(part))
				for _, col := range part {
					p = append(p, Point{col.x, c.Y(col.levels[k+1])})
				}
				for i := len(part) - 1; i >= 0; i-- {
					p = append(p, Point{part[i].x, c.Y(part[i].levels[k])})
				}
				paths = append(paths, simplify(p))
			}
		}
		if len(paths) == 0 {
			continue
		}
		fill, title := colors[key], key
		if key == OthersKey {
			fill = th.Others
		}
		c.Shapes = append(c.Shapes, Shape{Kind: KindArea, Class: "area", Key: key, Title: title, Fill: fill, Paths: paths})
	}
}

func (c *Chart) lines(th *Theme) {
	line := func(class string, col color.RGBA, width float64, dash []float64, value func(column) uint64) {
		var paths [][]Point
		for _, run := range c.cols {
			var p []Point
			for _, cl := range run {
				if v := value(cl); v > 0 {
					p = append(p, Point{cl.x, c.Y(v)})
				} else if len(p) > 0 {
					paths, p = append(paths, simplify(p)), nil
				}
			}
			if len(p) > 0 {
				paths = append(paths, simplify(p))
			}
		}
		if len(paths) > 0 {
			c.Shapes = append(c.Shapes, Shape{Kind: KindLine, Class: class, Key: class, Title: class, Stroke: col, Width: width, Dash: dash, Paths: paths})
		}
	}
	line("total", th.Total, 1, nil, func(cl column) uint64 { return cl.total })
	line("budget", th.Budget, 1.5, []float64{6, 4}, func(cl column) uint64 { return cl.budget })
}

func (c *Chart) markShapes() {
	for _, m := range c.marks {
		x := c.X(m.Time)
		col, ok := markColors[m.Kind]
		if !ok {
			col = markColors[timeline.MarkUnload]
		}
		title := m.Time.In(c.loc).Format("15:04:05") + " " + markWords[m.Kind]
		if m.Model != "" {
			title += " " + m.Model
		}
		c.Shapes = append(c.Shapes,
			Shape{Kind: KindLine, Class: "mark", Key: string(m.Kind), Title: title, Stroke: col, Width: 1, Dash: []float64{2, 2},
				Paths: [][]Point{{{x, c.Plot.Min.Y}, {x, c.Plot.Max.Y}}}},
			Shape{Kind: KindArea, Class: "mark", Key: string(m.Kind), Title: title, Fill: col,
				Paths: [][]Point{glyph(m.Kind, Point{x, c.Plot.Min.Y - glyphR - 1})}},
		)
	}
}

// simplify drops the points that lie on the straight line between their
// neighbours, on the way from one to the other: an hour of polls at a
// steady level becomes one segment.
func simplify(p []Point) []Point {
	if len(p) < 3 {
		return p
	}
	out := []Point{p[0]}
	for i := 1; i < len(p)-1; i++ {
		a, b, c := out[len(out)-1], p[i], p[i+1]
		collinear := (b.X-a.X)*(c.Y-a.Y)-(b.Y-a.Y)*(c.X-a.X) == 0
		onward := (b.X-a.X)*(c.X-b.X)+(b.Y-a.Y)*(c.Y-b.Y) > 0
		if !collinear || !onward {
			out = append(out, b)
		}
	}
	return append(out, p[len(p)-1])
}

// glyph is a mark's symbol centred on p: up for a load, down for an
// eviction or unload, a cross for a failure, a square for a yield, a
// diamond for a restore.
func glyph(k timeline.MarkKind, p Point) []Point {
	r := float64(glyphR)
	switch k {
	case timeline.MarkLoad:
		return []Point{{p.X, p.Y - r}, {p.X + r, p.Y + r}, {p.X - r, p.Y + r}}
	case timeline.MarkEviction, timeline.MarkUnload:
		return []Point{{p.X - r, p.Y - r}, {p.X + r, p.Y - r}, {p.X, p.Y + r}}
	case timeline.MarkFailedLoad:
		t := r / 3
		return []Point{
			{p.X - r, p.Y - r + t}, {p.X - r + t, p.Y - r}, {p.X, p.Y - t}, {p.X + r - t, p.Y - r}, {p.X + r, p.Y - r + t}, {p.X + t, p.Y},
			{p.X + r, p.Y + r - t}, {p.X + r - t, p.Y + r}, {p.X, p.Y + t}, {p.X - r + t, p.Y + r}, {p.X - r, p.Y + r - t}, {p.X - t, p.Y},
		}
	case timeline.MarkYield:
		return []Point{{p.X - r, p.Y - r}, {p.X + r, p.Y - r}, {p.X + r, p.Y + r}, {p.X - r, p.Y + r}}
	default:
		return []Point{{p.X, p.Y - r}, {p.X + r, p.Y}, {p.X, p.Y + r}, {p.X - r, p.Y}}
	}
}

// legend writes the title and one entry per series and mark kind shown,
// left to right, as many as fit.
func (c *Chart) legend(title string, colors map[string]color.RGBA, th *Theme) {
	y := float64(legendH) - 5
	x := c.Plot.Min.X
	if title != "" {
		c.Shapes = append(c.Shapes, Shape{Kind: KindText, Class: "title", Text: title, Fill: th.Text, Size: fontSize + 1, At: Point{4, y}, Anchor: AnchorStart})
		x = max(x, 4+textWidth(title, fontSize+1)+16)
	}
	type entry struct {
		key, text string
		swatch    Shape
	}
	var entries []entry
	sw := func(col color.RGBA) Shape {
		return Shape{Kind: KindRect, Fill: col, Box: Rect{Point{0, y - 9}, Point{10, y + 1}}}
	}
	for _, n := range c.series {
		entries = append(entries, entry{n, n, sw(colors[n])})
	}
	if c.hasOthers() {
		entries = append(entries, entry{OthersKey, OthersKey, sw(th.Others)})
	}
	line := func(col color.RGBA, width float64, dash []float64) Shape {
		return Shape{Kind: KindLine, Stroke: col, Width: width, Dash: dash, Paths: [][]Point{{{0, y - 4}, {10, y - 4}}}}
	}
	if len(c.samples) > 0 {
		entries = append(entries, entry{"budget", "budget", line(th.Budget, 1.5, []float64{3, 2})}, entry{"total", "card", line(th.Total, 1, nil)})
	}
	seen := map[timeline.MarkKind]bool{}
	for _, m := range c.marks {
		seen[m.Kind] = true
	}
	for _, k := range timeline.MarkKinds {
		if seen[k] {
			entries = append(entries, entry{string(k), markWords[k], Shape{Kind: KindArea, Fill: markColors[k], Paths: [][]Point{glyph(k, Point{5, y - 4})}}})
		}
	}
	for _, e := range entries {
		w := 14 + textWidth(e.text, fontSize)
		if x+w > c.Width-marginR {
			c.Shapes = append(c.Shapes, Shape{Kind: KindText, Class: "legend", Key: "more", Text: "…", Fill: th.Text, Size: fontSize, At: Point{x, y}, Anchor: AnchorStart})
			return
		}
		s := e.swatch.moved(x)
		s.Class, s.Key = "legend", e.key
		c.Shapes = append(c.Shapes, s, Shape{Kind: KindText, Class: "legend", Key: e.key, Text: e.text, Fill: th.Text, Size: fontSize, At: Point{x + 14, y}, Anchor: AnchorStart})
		x += w + 14
	}
}

func (c *Chart) hasOthers() bool {
	for _, s := range c.samples {
		if s.Others > 0 {
			return true
		}
	}
	return false
}

// moved is s shifted right by dx.
func (s Shape) moved(dx float64) Shape {
	s.Box.Min.X += dx
	s.Box.Max.X += dx
	paths := make([][]Point, len(s.Paths))
	for i, p := range s.Paths {
		paths[i] = make([]Point, len(p))
		for j, q := range p {
			paths[i][j] = Point{q.X + dx, q.Y}
		}
	}
	s.Paths = paths
	return s
}

// hoverReach is how far from a sample (in units) a hover still reads it.
const hoverReach = 8

// At describes the moment under a horizontal position, for a hover, one
// item a line: the nearest sample's time and numbers, then the marks
// within a few units of it. ok is
// false outside the plot or with no sample within hoverReach.
func (c *Chart) At(x float64) (text string, ok bool) {
	if x < c.Plot.Min.X || x > c.Plot.Max.X || len(c.samples) == 0 {
		return "", false
	}
	t := c.TimeAt(x)
	i := sort.Search(len(c.samples), func(i int) bool { return !c.samples[i].Time.Before(t) })
	if i == len(c.samples) || (i > 0 && t.Sub(c.samples[i-1].Time) < c.samples[i].Time.Sub(t)) {
		i--
	}
	s := c.samples[i]
	if math.Abs(c.X(s.Time)-x) > hoverReach {
		return "", false // before the first poll, or in a gap
	}
	lines := []string{s.Time.In(c.loc).Format("15:04:05")}
	for _, n := range c.series {
		if b := s.Models[n]; b > 0 {
			lines = append(lines, n+" "+config.FormatBytes(b))
		}
	}
	if s.Others > 0 {
		lines = append(lines, OthersKey+" "+config.FormatBytes(s.Others))
	}
	if s.Total > 0 {
		used := addSat(s.Ours(), s.Others)
		free := uint64(0)
		if s.Total > used {
			free = s.Total - used
		}
		lines = append(lines, "free "+config.FormatBytes(free))
	}
	lines = append(lines, "budget "+config.FormatBytes(s.Budget))
	for _, m := range c.marks {
		if math.Abs(c.X(m.Time)-x) <= 2*glyphR {
			lines = append(lines, fmt.Sprintf("%s %s %s", m.Time.In(c.loc).Format("15:04:05"), markWords[m.Kind], m.Model))
		}
	}
	text = strings.Join(lines, "\n")
	return text, true
}
