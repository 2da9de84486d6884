package app

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/vramkeeper/vramkeeper/internal/plot"
	"github.com/vramkeeper/vramkeeper/manager/keeper"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// Chart shows the card over the last hour: our models stacked by model in
// the colours the card bar uses, other programs on top, the budget as a
// dashed line, and marks for loads, evictions and yields. Hovering shows
// the numbers at that moment. It draws through internal/plot, the same
// code as `vramkeeper history --plot`.
type Chart struct {
	widget.BaseWidget
	palette *plot.Palette
	win     timeline.Window
	colors  map[string]color.RGBA
	to      time.Time
	empty   string
	loc     *time.Location

	// laid is the layout last drawn, for the hover; set and read on the
	// Fyne goroutine only.
	laid   *plot.Chart
	hover  string
	hoverX float32
}

// NewChart returns an empty chart; models take their colours from p, which
// the window shares with its card bar.
func NewChart(p *plot.Palette) *Chart {
	c := &Chart{palette: p, loc: time.Local}
	c.ExtendBaseWidget(c)
	return c
}

// SetWindow shows a window of samples and marks: the hour up to now.
func (c *Chart) SetWindow(w timeline.Window, now time.Time) {
	c.win, c.to = w, now
	c.colors = c.palette.Colors(w.Models())
	c.Refresh()
}

// SetEmpty sets what the chart says while it has no samples: why, when
// reading the timeline fails.
func (c *Chart) SetEmpty(msg string) {
	if msg == c.empty {
		return
	}
	c.empty = msg
	c.Refresh()
}

// MouseIn is desktop.Hoverable's.
func (c *Chart) MouseIn(e *desktop.MouseEvent) { c.MouseMoved(e) }

// MouseMoved shows the numbers under the pointer.
func (c *Chart) MouseMoved(e *desktop.MouseEvent) {
	text, ok := "", false
	if c.laid != nil {
		text, ok = c.laid.At(float64(e.Position.X))
	}
	if !ok {
		c.MouseOut()
		return
	}
	c.hover, c.hoverX = text, e.Position.X
	c.Refresh()
}

// MouseOut hides the numbers.
func (c *Chart) MouseOut() {
	if c.hover == "" {
		return
	}
	c.hover = ""
	c.Refresh()
}

// plotTheme is the plot's theme in the window's colours.
func plotTheme() *plot.Theme {
	rgba := func(n fyne.ThemeColorName) color.RGBA {
		return color.RGBAModel.Convert(theme.Color(n)).(color.RGBA)
	}
	th := plot.Light
	th.Background = rgba(theme.ColorNameBackground)
	th.Text = rgba(theme.ColorNameForeground)
	th.Grid = rgba(theme.ColorNameSeparator)
	th.Budget = th.Text
	th.Total = rgba(theme.ColorNameDisabled)
	return &th
}

// CreateRenderer is Fyne's.
func (c *Chart) CreateRenderer() fyne.WidgetRenderer {
	r := &chartRenderer{c: c, cursor: canvas.NewRectangle(color.Black), tip: widget.NewLabel("")}
	r.tipBG = canvas.NewRectangle(color.Black)
	r.raster = canvas.NewRaster(r.draw)
	r.Refresh()
	return r
}

type chartRenderer struct {
	c      *Chart
	raster *canvas.Raster
	cursor *canvas.Rectangle
	tipBG  *canvas.Rectangle
	tip    *widget.Label
}

// draw lays the chart out at the widget's size and paints it at the
// screen's pixels; Fyne calls it only when the chart is on screen.
func (r *chartRenderer) draw(w, h int) image.Image {
	c := r.c
	size := c.Size()
	if size.Width <= 0 || size.Height <= 0 || w <= 0 || h <= 0 {
		return image.NewRGBA(image.Rect(0, 0, max(w, 1), max(h, 1)))
	}
	c.laid = plot.Layout(c.win, plot.Options{
		Width: float64(size.Width), Height: float64(size.Height),
		To: c.to, Colors: c.colors, Theme: plotTheme(), Location: c.loc, Empty: c.empty,
	})
	return c.laid.Image(float64(w) / float64(size.Width))
}

func (r *chartRenderer) Layout(size fyne.Size) {
	r.raster.Resize(size)
	c := r.c
	if c.hover == "" || c.laid == nil {
		return
	}
	plotTop, plotBottom := float32(c.laid.Plot.Min.Y), float32(c.laid.Plot.Max.Y)
	r.cursor.Move(fyne.NewPos(c.hoverX, plotTop))
	r.cursor.Resize(fyne.NewSize(1, plotBottom-plotTop))
	ts := r.tip.MinSize()
	x := c.hoverX + theme.Padding()
	if x+ts.Width > size.Width {
		x = c.hoverX - theme.Padding() - ts.Width // flip to the left of the pointer
	}
	pos := fyne.NewPos(max(min(x, size.Width-ts.Width), 0), plotTop)
	r.tipBG.Move(pos)
	r.tipBG.Resize(ts)
	r.tip.Move(pos)
	r.tip.Resize(ts)
}

func (r *chartRenderer) Refresh() {
	c := r.c
	r.cursor.FillColor = theme.Color(theme.ColorNameForeground)
	r.tipBG.FillColor = theme.Color(theme.ColorNameOverlayBackground)
	r.tipBG.StrokeColor, r.tipBG.StrokeWidth = theme.Color(theme.ColorNameSeparator), 1
	shown := c.hover != ""
	r.cursor.Hidden, r.tipBG.Hidden, r.tip.Hidden = !shown, !shown, !shown
	r.tip.SetText(c.hover)
	r.Layout(c.Size())
	r.raster.Refresh()
	r.cursor.Refresh()
	r.tipBG.Refresh()
}

func (r *chartRenderer) MinSize() fyne.Size { return fyne.NewSize(320, 180) }

func (r *chartRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.raster, r.cursor, r.tipBG, r.tip}
}

func (r *chartRenderer) Destroy() {}

// How the window follows the tray's timeline.
const (
	timelinePoll    = 2 * time.Second // as often as the manager polls
	timelineTimeout = 5 * time.Second
	// timelineOverlap: each read starts this far before the newest entry
	// the window has, so a mark recorded a little after its time still
	// arrives; the ring drops what it has already.
	timelineOverlap = 30 * time.Second
)

// timelineFeed is the window's copy of the tray's timeline, kept by
// reading what is new every few seconds.
type timelineFeed struct {
	src   keeper.Keeper
	ring  *timeline.Ring
	since time.Time
}

func newTimelineFeed(src keeper.Keeper) *timelineFeed {
	return &timelineFeed{src: src, ring: timeline.New(0, 0)}
}

// pull reads what is new and returns everything the feed has; on an error
// it returns what it had, so the chart keeps its picture.
func (f *timelineFeed) pull(ctx context.Context) (timeline.Window, error) {
	rctx, cancel := context.WithTimeout(ctx, timelineTimeout)
	defer cancel()
	got, err := f.src.Timeline(rctx, f.since)
	if err != nil {
		since := "the start"
		if !f.since.IsZero() {
			since = f.since.Format(time.TimeOnly)
		}
		return f.ring.Since(time.Time{}), fmt.Errorf("reading the timeline since %s: %w", since, err)
	}
	// A bad entry is dropped and said; the rest is kept.
	err = f.ring.Merge(got)
	all := f.ring.Since(time.Time{})
	if l := all.Latest(); !l.IsZero() {
		f.since = l.Add(-timelineOverlap)
	}
	return all, err
}

// followTimeline feeds the chart until ctx ends, while its tab shows: a
// read when it is selected, then one every poll (timelinePoll). A failed
// read leaves the chart as it was and is logged once until it changes.
func (u *ui) followTimeline(ctx context.Context, src keeper.Keeper, poll time.Duration) {
	f := newTimelineFeed(src)
	t := time.NewTicker(poll)
	defer t.Stop()
	var lastErr string
	for {
		if !u.chartVisible.Load() {
			select {
			case <-ctx.Done():
				return
			case <-u.chartShown:
			}
		}
		w, err := f.pull(ctx)
		if ctx.Err() != nil {
			return
		}
		msg := ""
		if err != nil {
			msg = err.Error()
			if msg != lastErr {
				u.log.Warn("timeline", "err", err)
			}
		}
		lastErr = msg
		now := u.now()
		fyne.Do(func() { u.showTimeline(chartUpdate{w, now, msg}) })
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// chartUpdate is one read of the timeline for the chart.
type chartUpdate struct {
	w   timeline.Window
	now time.Time
	err string // why the read failed, if it did
}

// showTimeline gives the chart the newest read at once while the History
// tab shows it, else when that tab is next selected: redrawing a chart
// nobody sees would repaint the window every poll for nothing.
func (u *ui) showTimeline(c chartUpdate) {
	u.chartNext = &c
	if u.tabs.Selected() == u.historyTab {
		u.flushChart()
	}
}

func (u *ui) flushChart() {
	c := u.chartNext
	if c == nil {
		return
	}
	u.chartNext = nil
	u.chart.SetWindow(c.w, c.now)
	if c.err != "" {
		u.chart.SetEmpty("No timeline: " + c.err)
	} else {
		u.chart.SetEmpty("")
	}
}
