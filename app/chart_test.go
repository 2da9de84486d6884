package app

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"
	"go.uber.org/goleak"

	"github.com/vramkeeper/vramkeeper/internal/plot"
	"github.com/vramkeeper/vramkeeper/manager/keeper"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

var c0 = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

// twentyMinutes: 2 s polls from 12:00 to 12:20 on an 8 GiB card with a
// 7 GiB budget; the coder loads at 12:02, the chat model at 12:08 and is
// evicted at 12:15; other programs take 2 GiB from 12:05 to 12:10.
func twentyMinutes() timeline.Window {
	at := func(m float64) time.Time { return c0.Add(time.Duration(m * float64(time.Minute))) }
	var w timeline.Window
	for t := c0; !t.After(at(20)); t = t.Add(2 * time.Second) {
		s := timeline.Sample{Time: t, Models: map[string]uint64{}, Others: 200 * mib, Budget: 7 * gib, Total: 8 * gib, Source: "nvml"}
		if !t.Before(at(2)) {
			s.Models["qwen2.5-coder:7b"] = 4400 * mib
		}
		if !t.Before(at(8)) && t.Before(at(15)) {
			s.Models["llama3.2:3b"] = 2000 * mib
		}
		if !t.Before(at(5)) && t.Before(at(10)) {
			s.Others += 2 * gib
		}
		w.Samples = append(w.Samples, s)
	}
	w.Marks = []timeline.Mark{
		{Time: at(2), Kind: timeline.MarkLoad, Model: "qwen2.5-coder:7b"},
		{Time: at(8), Kind: timeline.MarkLoad, Model: "llama3.2:3b"},
		{Time: at(15), Kind: timeline.MarkEviction, Model: "llama3.2:3b"},
	}
	return w
}

// shownChart is a chart of twenty minutes in a test window, drawn once.
func shownChart(t *testing.T, p *plot.Palette) (*Chart, fyne.Window) {
	t.Helper()
	c := NewChart(p)
	c.loc = time.UTC
	c.SetWindow(twentyMinutes(), c0.Add(20*time.Minute))
	w := test.NewTempWindow(t, c)
	w.SetPadded(false)
	w.Resize(fyne.NewSize(720, 260))
	w.Canvas().Capture() // draws, and lays the chart out
	return c, w
}

func TestChartImage(t *testing.T) {
	test.NewTempApp(t)
	_, w := shownChart(t, plot.NewPalette())
	test.AssertImageMatches(t, "chart.png", w.Canvas().Capture())
}

func TestChartLayout(t *testing.T) {
	test.NewTempApp(t)
	p := plot.NewPalette()
	c, _ := shownChart(t, p)
	l := c.laid
	if l == nil {
		t.Fatal("the chart was not laid out when drawn")
	}
	if l.Width != 720 || l.Height != 260 {
		t.Errorf("laid out at %gx%g, want the widget's 720x260", l.Width, l.Height)
	}
	// The hour up to now: 12:20 at the right edge.
	if !l.To.Equal(c0.Add(20*time.Minute)) || l.To.Sub(l.From) != time.Hour {
		t.Errorf("time axis %v–%v, want the hour up to 12:20", l.From, l.To)
	}
	// Both models and other programs are areas, in the palette's colours,
	// which the card bar shares.
	bar := NewStackBar(p)
	for _, name := range []string{"qwen2.5-coder:7b", "llama3.2:3b", plot.OthersKey} {
		var found bool
		for _, s := range l.Shapes {
			if s.Class == "area" && s.Key == name {
				found = true
				if name != plot.OthersKey && s.Fill != bar.palette.Color(name) {
					t.Errorf("%s is %v in the chart and %v in the bar", name, s.Fill, bar.palette.Color(name))
				}
			}
		}
		if !found {
			t.Errorf("no area for %s", name)
		}
	}
	var marks []string
	for _, s := range l.Shapes {
		if s.Class == "mark" && s.Kind == plot.KindLine {
			marks = append(marks, s.Key)
		}
	}
	if want := []string{"load", "load", "eviction"}; !slices.Equal(marks, want) {
		t.Errorf("marks %v, want %v", marks, want)
	}
}

func TestChartHover(t *testing.T) {
	test.NewTempApp(t)
	c, _ := shownChart(t, plot.NewPalette())
	r := test.TempWidgetRenderer(t, c).(*chartRenderer)
	move := func(x float32) {
		c.MouseMoved(&desktop.MouseEvent{PointEvent: fyne.PointEvent{Position: fyne.NewPos(x, 100)}})
	}
	tests := []struct {
		name  string
		at    time.Time
		shown bool
		want  []string
	}{
		{"the chat model loaded", c0.Add(9 * time.Minute), true, []string{"12:09:00", "llama3.2:3b 2.0 GiB", "qwen2.5-coder:7b 4.3 GiB", "other programs 2.2 GiB", "budget 7.0 GiB"}},
		{"on the eviction", c0.Add(15 * time.Minute), true, []string{"eviction llama3.2:3b"}},
		{"at the first sample", c0, true, []string{"12:00:00", "other programs 200 MiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := float32(c.laid.X(tt.at))
			move(x)
			if r.tip.Hidden != !tt.shown {
				t.Fatalf("tip hidden %v, want shown %v", r.tip.Hidden, tt.shown)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.tip.Text, w) {
					t.Errorf("tip %q lacks %q", r.tip.Text, w)
				}
			}
			if r.cursor.Hidden || r.cursor.Position().X != x {
				t.Errorf("cursor at %v (hidden %v), want at the pointer's x %g", r.cursor.Position(), r.cursor.Hidden, x)
			}
			if right := r.tip.Position().X + r.tip.Size().Width; right > c.Size().Width || r.tip.Position().X < 0 {
				t.Errorf("tip spans x %g–%g, outside the %g-wide chart", r.tip.Position().X, right, c.Size().Width)
			}
		})
	}
	for _, x := range []float32{2, float32(c.laid.X(c0.Add(-30 * time.Minute)))} {
		move(x) // over the axis labels; before the first poll
		if !r.tip.Hidden || !r.cursor.Hidden {
			t.Errorf("a tip at x %g, where there is nothing to read", x)
		}
	}
	move(float32(c.laid.X(c0.Add(5 * time.Minute))))
	c.MouseOut()
	if !r.tip.Hidden {
		t.Error("the tip stays after the pointer left")
	}
}

// fakeTimeline answers reads from a ring and records the since of each.
type fakeTimeline struct {
	keeper.Keeper
	mu     sync.Mutex
	ring   *timeline.Ring
	asked  []time.Time
	err    error
	called chan struct{}
}

func (f *fakeTimeline) Timeline(ctx context.Context, since time.Time) (timeline.Window, error) {
	f.mu.Lock()
	f.asked = append(f.asked, since)
	err := f.err
	f.mu.Unlock()
	if f.called != nil {
		select {
		case f.called <- struct{}{}:
		case <-ctx.Done():
			return timeline.Window{}, ctx.Err()
		}
	}
	if err != nil {
		return timeline.Window{}, err
	}
	return f.ring.Since(since), nil
}

func TestTimelineFeed(t *testing.T) {
	src := &fakeTimeline{ring: timeline.New(0, 0)}
	all := twentyMinutes()
	half := len(all.Samples) / 2
	if err := src.ring.Merge(timeline.Window{Samples: all.Samples[:half], Marks: all.Marks[:2]}); err != nil {
		t.Fatal(err)
	}
	f := newTimelineFeed(src)
	ctx := context.Background()

	got, err := f.pull(ctx)
	if err != nil || len(got.Samples) != half || len(got.Marks) != 2 {
		t.Fatalf("first read: %d samples, %d marks, %v; want %d, 2", len(got.Samples), len(got.Marks), err, half)
	}
	// The tray records the rest, one mark of it late; the next read starts
	// 30 s before the newest entry the window has and repeats nothing.
	if err := src.ring.Merge(timeline.Window{Samples: all.Samples[half:], Marks: all.Marks[2:]}); err != nil {
		t.Fatal(err)
	}
	firstNewest := all.Samples[half-1].Time
	got, err = f.pull(ctx)
	if err != nil || len(got.Samples) != len(all.Samples) || !slices.Equal(got.Marks, all.Marks) {
		t.Fatalf("second read: %d samples, marks %v, %v; want %d and every mark once", len(got.Samples), got.Marks, err, len(all.Samples))
	}
	if want := firstNewest.Add(-timelineOverlap); !src.asked[1].Equal(want) {
		t.Errorf("second read asked since %v, want %v", src.asked[1], want)
	}

	// The tray goes away: the chart keeps its picture, the error says what
	// failed (the read since 30 s before the newest poll, 12:20:00).
	src.err = errors.New("connection refused")
	got, err = f.pull(ctx)
	if err == nil || !strings.Contains(err.Error(), "reading the timeline since 12:19:30: connection refused") {
		t.Errorf("error %v, want one naming the read and the cause", err)
	}
	if len(got.Samples) != len(all.Samples) {
		t.Errorf("after a failed read: %d samples, want the %d it had", len(got.Samples), len(all.Samples))
	}
}

// followTimeline reads at once and then every poll, feeds the chart, and
// stops with its context, leaving no goroutine behind.
func TestFollowTimeline(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := newHarness(t)
	src := &fakeTimeline{ring: timeline.New(0, 0), called: make(chan struct{})}
	if err := src.ring.Merge(twentyMinutes()); err != nil {
		t.Fatal(err)
	}
	h.u.tabs.SelectIndex(1) // the chart is drawn while its tab shows
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.u.followTimeline(ctx, src, time.Millisecond)
	}()
	// The second read starts after the first has reached the chart.
	for range 2 {
		select {
		case <-src.called:
		case <-time.After(10 * time.Second):
			t.Fatal("the timeline was not read")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("followTimeline did not stop with its context")
	}
	if got := len(h.u.chart.win.Samples); got != len(twentyMinutes().Samples) {
		t.Errorf("chart has %d samples, want %d", got, len(twentyMinutes().Samples))
	}
	if h.u.chart.empty != "" {
		t.Errorf("chart says %q after a good read", h.u.chart.empty)
	}
}

// Behind another tab the chart is not redrawn: the newest read waits for
// its tab to be selected.
func TestChartWaitsForItsTab(t *testing.T) {
	h := newHarness(t)
	h.u.showTimeline(chartUpdate{w: twentyMinutes(), now: time.Now()})
	if len(h.u.chart.win.Samples) != 0 {
		t.Fatal("the chart was drawn behind the Models tab")
	}
	h.u.tabs.SelectIndex(1)
	if got := len(h.u.chart.win.Samples); got != len(twentyMinutes().Samples) {
		t.Errorf("chart has %d samples once its tab shows, want %d", got, len(twentyMinutes().Samples))
	}
}

// The window shows the card as the stacked bar in its header and the
// chart above the history.
func TestWindowShowsPictures(t *testing.T) {
	h := newHarness(t)
	var names []string
	for _, g := range h.u.bar.total.bar.Segments {
		names = append(names, g.Name)
	}
	if want := []string{"qwen2.5:7b", "free"}; !slices.Equal(names, want) {
		t.Errorf("bar shows %v, want %v", names, want)
	}
	split, ok := h.u.tabs.Items[1].Content.(*container.Split)
	if !ok || h.u.tabs.Items[1].Text != "History" || split.Leading != h.u.chart || split.Trailing != h.u.historyList {
		t.Fatalf("History tab holds %T, want the chart above the history list", h.u.tabs.Items[1].Content)
	}
	// A model loads: the bar follows the next snapshot.
	s := h.k.Snapshot()
	s.Models = slices.Clone(s.Models)
	s.Models[1] = loaded("llama3.2:3b", 2*gib)
	h.u.apply(s)
	if got := len(h.u.bar.total.bar.Segments); got != 3 {
		t.Errorf("bar has %d parts after a second model loaded, want 3", got)
	}
}
