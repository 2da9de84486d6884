package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// run runs an X tool (xdotool, import) on $DISPLAY with a timeout, so a
// wedged X server fails the test instead of hanging it.
func run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// FindWindow returns the geometry of the visible window titled title.
// Without a window manager the window has no frame, so its geometry is
// where its content is on the root window.
func FindWindow(title string) (image.Rectangle, error) {
	out, err := run(20*time.Second, "xdotool", "search", "--onlyvisible", "--name", "^"+title+"$")
	if err != nil {
		return image.Rectangle{}, fmt.Errorf("finding window %q: %w", title, err)
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return image.Rectangle{}, fmt.Errorf("no visible window %q", title)
	}
	out, err = run(20*time.Second, "xdotool", "getwindowgeometry", "--shell", ids[0])
	if err != nil {
		return image.Rectangle{}, err
	}
	v := map[string]int{}
	for _, l := range strings.Fields(out) {
		k, s, ok := strings.Cut(l, "=")
		if n, err := strconv.Atoi(s); ok && err == nil {
			v[k] = n
		}
	}
	r := image.Rect(v["X"], v["Y"], v["X"]+v["WIDTH"], v["Y"]+v["HEIGHT"])
	if r.Empty() {
		return r, fmt.Errorf("window %q has geometry %q", title, out)
	}
	return r, nil
}

// ResizeWindow resizes the visible window titled title to w×h pixels.
func ResizeWindow(title string, w, h int) error {
	_, err := run(20*time.Second, "xdotool", "search", "--onlyvisible", "--name", "^"+title+"$",
		"windowsize", "--sync", strconv.Itoa(w), strconv.Itoa(h))
	if err != nil {
		return fmt.Errorf("resizing window %q to %dx%d: %w", title, w, h, err)
	}
	return nil
}

// Screenshot grabs the whole screen with ImageMagick's import.
func Screenshot() (image.Image, error) {
	f, err := os.CreateTemp("", "vk-shot-*.png")
	if err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	f.Close()
	defer os.Remove(f.Name())
	if _, err := run(60*time.Second, "import", "-window", "root", f.Name()); err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("screenshot: decoding: %w", err)
	}
	return img, nil
}

// SavePNG writes the part r of img to path.
func SavePNG(path string, img image.Image, r image.Rectangle) error {
	r = r.Intersect(img.Bounds())
	out := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(out, out.Bounds(), img, r.Min, draw.Src)
	var b bytes.Buffer
	if err := png.Encode(&b, out); err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing screenshot: %w", err)
	}
	return nil
}

// Click moves the pointer to p (root coordinates) and clicks button 1.
func Click(p image.Point) error {
	_, err := run(20*time.Second, "xdotool", "mousemove", "--sync", strconv.Itoa(p.X), strconv.Itoa(p.Y), "click", "1")
	return err
}

// Tabs is where a Fyne AppTabs bar was found on a screenshot: the selected
// tab's indicator and the centre of each tab's label, left to right.
type Tabs struct {
	Indicator image.Rectangle
	Labels    []image.Point
}

// Selected is the index of the label above the indicator, or -1.
func (t Tabs) Selected() int {
	for i, l := range t.Labels {
		if l.X >= t.Indicator.Min.X && l.X < t.Indicator.Max.X {
			return i
		}
	}
	return -1
}

// isPrimary tells Fyne's default primary blue (the tab indicator) from
// text, greys and the other theme colours.
func isPrimary(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	r, g, b = r>>8, g>>8, b>>8
	return b > 200 && r < 110 && g > 80 && g < 170
}

func luma(c color.Color) int {
	r, g, b, _ := c.RGBA()
	return int(299*(r>>8)+587*(g>>8)+114*(b>>8)) / 1000
}

// background is the most common luma in r: the tab bar's fill, whichever
// theme variant (light or dark) the app picked.
func background(img image.Image, r image.Rectangle) int {
	var hist [256]int
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			hist[luma(img.At(x, y))]++
		}
	}
	best := 0
	for l, n := range hist {
		if n > hist[best] {
			best = l
		}
	}
	return best
}

// FindTabs locates the tab bar inside win on img. Fyne draws the selected
// tab's indicator as a thin primary-coloured bar under its label; the
// progress bar above is primary too but tall, and the entry's focus border
// is below. So the indicator is the topmost thin horizontal primary run; the
// labels are the clusters of dark pixels in the band just above it.
func FindTabs(img image.Image, win image.Rectangle) (Tabs, error) {
	win = win.Intersect(img.Bounds())
	// runAt returns the longest horizontal run of primary pixels on row y.
	runAt := func(y int) (int, int) {
		best0, best1, start := 0, 0, -1
		for x := win.Min.X; x <= win.Max.X; x++ {
			if x < win.Max.X && isPrimary(img.At(x, y)) {
				if start < 0 {
					start = x
				}
				continue
			}
			if start >= 0 && x-start > best1-best0 {
				best0, best1 = start, x
			}
			start = -1
		}
		return best0, best1
	}
	for y := win.Min.Y; y < win.Max.Y; y++ {
		x0, x1 := runAt(y)
		if x1-x0 < 30 {
			continue
		}
		// A band of rows with such a run; thin means the indicator.
		h := 1
		for y+h < win.Max.Y {
			a, b := runAt(y + h)
			if b-a < 30 {
				break
			}
			h++
		}
		if h > 6 {
			y += h
			continue
		}
		t := Tabs{Indicator: image.Rect(x0, y, x1, y+h)}
		// Label text sits in the 30 px above the indicator; it contrasts with
		// the bar's background (light on dark or dark on light).
		top := max(y-30, win.Min.Y)
		band := image.Rect(win.Min.X, top, win.Max.X, y-2)
		bg := background(img, band)
		var cols []int
		for x := band.Min.X; x < band.Max.X; x++ {
			for yy := band.Min.Y; yy < band.Max.Y; yy++ {
				if d := luma(img.At(x, yy)) - bg; d > 60 || d < -60 {
					cols = append(cols, x)
					break
				}
			}
		}
		// Letters are a few pixels apart; tabs dozens.
		for i := 0; i < len(cols); {
			j := i
			for j+1 < len(cols) && cols[j+1]-cols[j] <= 14 {
				j++
			}
			t.Labels = append(t.Labels, image.Pt((cols[i]+cols[j])/2, (top+y)/2))
			i = j + 1
		}
		if len(t.Labels) == 0 {
			return t, fmt.Errorf("tab indicator at %v but no labels above it", t.Indicator)
		}
		return t, nil
	}
	return Tabs{}, fmt.Errorf("no tab indicator in window %v", win)
}

// rowLuma is row y of img between x0 and x1: its most common luma, and how
// many pixels differ from bg by more than 40 (text, bars, lines).
func rowLuma(img image.Image, y, x0, x1, bg int) (common, marked int) {
	var hist [256]int
	for x := x0; x < x1; x++ {
		l := luma(img.At(x, y))
		hist[l]++
		if d := l - bg; d > 40 || d < -40 {
			marked++
		}
	}
	for l, n := range hist {
		if n > hist[common] {
			common = l
		}
	}
	return common, marked
}

// cropMargin is the room kept around a close-up.
const cropMargin = 4

// CardBarArea finds the card bar and its legend at the top of win on img:
// the first rows that differ from the window's background, down to the
// first gap of gap background rows (the bar and its legend are a few
// pixels apart, the line under them further), with a margin.
func CardBarArea(img image.Image, win image.Rectangle) (image.Rectangle, error) {
	const gap = 8
	win = win.Intersect(img.Bounds())
	bg := background(img, win)
	top, bottom, blank := -1, -1, 0
	for y := win.Min.Y; y < win.Max.Y; y++ {
		if _, marked := rowLuma(img, y, win.Min.X, win.Max.X, bg); marked > 0 {
			if top < 0 {
				top = y
			}
			bottom, blank = y+1, 0
			continue
		}
		if top >= 0 {
			if blank++; blank >= gap {
				r := image.Rect(win.Min.X, top-cropMargin, win.Max.X, bottom+cropMargin)
				return r.Intersect(win), nil
			}
		}
	}
	return image.Rectangle{}, fmt.Errorf("no card bar at the top of window %v", win)
}

// ChartArea finds the History tab's chart on img: the rows between the tab
// bar's underline (the band at tabs.Indicator) and the split's divider
// under the chart, the next band of at least 3 rows in another colour than
// the background from one side of the window to the other. Thinner bands
// (the chart's axis) belong to the chart, and so do the chart's areas,
// which leave its margins in the background's colour.
func ChartArea(img image.Image, win image.Rectangle, tabs Tabs) (image.Rectangle, error) {
	const divider = 3
	win = win.Intersect(img.Bounds())
	bg := background(img, win)
	isBand := func(y int) bool {
		common, _ := rowLuma(img, y, win.Min.X, win.Max.X, bg)
		return common != bg && luma(img.At(win.Min.X+2*cropMargin, y)) == common &&
			luma(img.At(win.Max.X-1-2*cropMargin, y)) == common
	}
	y := tabs.Indicator.Min.Y
	for y < win.Max.Y && isBand(y) {
		y++
	}
	top := y
	for ; y < win.Max.Y; y++ {
		n := 0
		for y+n < win.Max.Y && isBand(y+n) {
			n++
		}
		if n >= divider {
			if y-top < 50 {
				return image.Rectangle{}, fmt.Errorf("the chart under the tabs in %v is only %d rows high", win, y-top)
			}
			return image.Rect(win.Min.X, top, win.Max.X, y), nil
		}
		y += n
	}
	return image.Rectangle{}, fmt.Errorf("no divider under the chart in window %v", win)
}

// FindButtons finds Fyne's high-importance buttons inside win on img:
// filled rectangles of the primary colour at least 40×20 pixels (the tab
// indicator is thinner; the label's white text leaves holes, hence a
// fill of three quarters). They come top to bottom, then left to right.
func FindButtons(img image.Image, win image.Rectangle) []image.Rectangle {
	win = win.Intersect(img.Bounds())
	w, h := win.Dx(), win.Dy()
	seen := make([]bool, w*h)
	var out []image.Rectangle
	for y := range h {
		for x := range w {
			if seen[y*w+x] || !isPrimary(img.At(win.Min.X+x, win.Min.Y+y)) {
				continue
			}
			// Flood-fill this blob of primary pixels, keeping its box.
			box, n := image.Rect(x, y, x+1, y+1), 0
			stack := []image.Point{{x, y}}
			seen[y*w+x] = true
			for len(stack) > 0 {
				p := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				n++
				box = box.Union(image.Rect(p.X, p.Y, p.X+1, p.Y+1))
				for _, d := range []image.Point{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
					q := p.Add(d)
					if q.X < 0 || q.Y < 0 || q.X >= w || q.Y >= h || seen[q.Y*w+q.X] {
						continue
					}
					if isPrimary(img.At(win.Min.X+q.X, win.Min.Y+q.Y)) {
						seen[q.Y*w+q.X] = true
						stack = append(stack, q)
					}
				}
			}
			if box.Dx() >= 40 && box.Dy() >= 20 && 4*n >= 3*box.Dx()*box.Dy() {
				out = append(out, box.Add(win.Min))
			}
		}
	}
	return out
}

// Center is the middle of r.
func Center(r image.Rectangle) image.Point { return image.Pt((r.Min.X+r.Max.X)/2, (r.Min.Y+r.Max.Y)/2) }

// Key sends a key chord ("ctrl+w", "Return") to the focused window.
func Key(chord string) error {
	_, err := run(20*time.Second, "xdotool", "key", "--clearmodifiers", chord)
	return err
}

// Type types text into the focused widget.
func Type(text string) error {
	_, err := run(60*time.Second, "xdotool", "type", "--delay", "20", text)
	return err
}

// FieldAtBottom says whether img shows a text field across the bottom of
// win, as the offer of models has for a name: 16 rows or more of the
// bottom 48 that are mostly a field's fill (a little lighter than the
// background; a label's line there is mostly background).
func FieldAtBottom(img image.Image, win image.Rectangle) bool {
	win = win.Intersect(img.Bounds())
	bg := background(img, win)
	run := 0
	for y := max(win.Max.Y-48, win.Min.Y); y < win.Max.Y; y++ {
		n := 0
		for x := win.Min.X; x < win.Max.X; x++ {
			if l := luma(img.At(x, y)); l >= bg+6 && l <= bg+30 {
				n++
			}
		}
		if 4*n < 3*win.Dx() {
			run = 0
			continue
		}
		if run++; run >= 16 {
			return true
		}
	}
	return false
}

// TableHasRow says whether the Models table shows a row on img: below y
// (the tab indicator), a header band (Fyne's header cells, a lighter grey
// than the background across most of the window), then text in the first
// column of the row under it. The offer of models shown while none is
// installed has no such header, and an empty table no such text.
func TableHasRow(img image.Image, win image.Rectangle, y int) bool {
	win = win.Intersect(img.Bounds())
	bg := background(img, win)
	header := func(y int) bool {
		n := 0
		for x := win.Min.X; x < win.Max.X; x++ {
			if l := luma(img.At(x, y)); l >= bg+12 && l <= bg+30 {
				n++
			}
		}
		return 2*n >= win.Dx() // the labels take the rest
	}
	// The header is 20 rows or more of it (an entry's border is one).
	for run := 0; y < win.Max.Y; y++ {
		if header(y) {
			run++
		} else if run >= 20 {
			break
		} else {
			run = 0
		}
	}
	// The first row: as tall as the header, its name in the first 180
	// pixels (the name column).
	for ry := y; ry < min(y+40, win.Max.Y); ry++ {
		for x := win.Min.X + 4; x < min(win.Min.X+180, win.Max.X); x++ {
			if luma(img.At(x, ry)) > bg+80 {
				return true
			}
		}
	}
	return false
}
