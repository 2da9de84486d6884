package plot

import (
	"image"
	"image/color"
	"image/draw"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// Image draws the chart with scale pixels per unit (1 for a file, the
// screen's scale for the window).
func (c *Chart) Image(scale float64) *image.RGBA {
	if scale <= 0 {
		scale = 1
	}
	w, h := max(int(math.Ceil(c.Width*scale)), 1), max(int(math.Ceil(c.Height*scale)), 1)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(c.Background), image.Point{}, draw.Src)
	r := raster{img: img, z: vector.NewRasterizer(w, h), scale: scale, faces: map[float64]font.Face{}}
	for _, s := range c.Shapes {
		switch s.Kind {
		case KindRect:
			b := s.Box
			r.fill([][]Point{{b.Min, {b.Max.X, b.Min.Y}, b.Max, {b.Min.X, b.Max.Y}}}, s.Fill)
		case KindArea:
			r.fill(s.Paths, s.Fill)
		case KindLine:
			r.stroke(s.Paths, s.Stroke, s.Width, s.Dash)
		case KindText:
			r.text(s)
		}
	}
	return img
}

type raster struct {
	img   *image.RGBA
	z     *vector.Rasterizer
	scale float64
	faces map[float64]font.Face
}

// fill paints closed polygons. The rasterizer covers only their bounding
// box: clearing and compositing the whole image for each shape would cost
// the chart's area times its shape count.
func (r *raster) fill(paths [][]Point, col color.RGBA) {
	box := image.Rectangle{}
	for _, p := range paths {
		for _, q := range p {
			x, y := r.pt(q)
			pt := image.Rect(int(math.Floor(float64(x))), int(math.Floor(float64(y))), int(math.Ceil(float64(x)))+1, int(math.Ceil(float64(y)))+1)
			box = box.Union(pt)
		}
	}
	box = box.Intersect(r.img.Bounds())
	if box.Empty() {
		return
	}
	r.z.Reset(box.Dx(), box.Dy())
	ox, oy := float32(box.Min.X), float32(box.Min.Y)
	for _, p := range paths {
		if len(p) < 3 {
			continue
		}
		x, y := r.pt(p[0])
		r.z.MoveTo(x-ox, y-oy)
		for _, q := range p[1:] {
			x, y := r.pt(q)
			r.z.LineTo(x-ox, y-oy)
		}
		r.z.ClosePath()
	}
	r.z.Draw(r.img, box, image.NewUniform(col), image.Point{})
}

func (r *raster) pt(p Point) (float32, float32) {
	return float32(p.X * r.scale), float32(p.Y * r.scale)
}

// stroke paints polylines width units wide (at least a pixel), as one quad
// per segment or dash; the dash pattern runs on across a path's segments.
// Axis-aligned lines of odd pixel width sit on pixel centres, so grid lines
// are crisp rather than two half-grey rows.
func (r *raster) stroke(paths [][]Point, col color.RGBA, width float64, dash []float64) {
	px := max(math.Round(width*r.scale), 1)
	var quads [][]Point
	for _, p := range paths {
		d := dasher{pattern: dash, scale: r.scale, on: true}
		for i := 1; i < len(p); i++ {
			a, b := r.snap(p[i-1], p[i], px), r.snap(p[i], p[i-1], px)
			for _, seg := range d.cut(a, b) {
				quads = append(quads, quad(seg[0], seg[1], px/2))
			}
		}
	}
	// The quads are in pixels already.
	scale := r.scale
	r.scale = 1
	r.fill(quads, col)
	r.scale = scale
}

// snap scales a to pixels and, when the segment a–b is horizontal or
// vertical, centres it on a pixel row or column for odd widths.
func (r *raster) snap(a, b Point, px float64) Point {
	p := Point{a.X * r.scale, a.Y * r.scale}
	odd := math.Mod(px, 2) == 1
	if a.Y == b.Y && odd {
		p.Y = math.Floor(p.Y) + 0.5
	}
	if a.X == b.X && odd {
		p.X = math.Floor(p.X) + 0.5
	}
	return p
}

// dasher cuts a polyline's segments into the "on" parts of a dash pattern
// (in units), keeping its place from one segment to the next.
type dasher struct {
	pattern []float64
	scale   float64
	i       int     // the pattern entry in progress
	left    float64 // pixels left of it; 0 before the first
	on      bool
}

func (d *dasher) cut(a, b Point) [][2]Point {
	if len(d.pattern) == 0 {
		return [][2]Point{{a, b}}
	}
	dx, dy := b.X-a.X, b.Y-a.Y
	n := math.Hypot(dx, dy)
	var out [][2]Point
	for pos := 0.0; pos < n; {
		if d.left <= 0 {
			d.left = max(d.pattern[d.i%len(d.pattern)]*d.scale, 1)
		}
		end := min(pos+d.left, n)
		if d.on {
			out = append(out, [2]Point{{a.X + dx*pos/n, a.Y + dy*pos/n}, {a.X + dx*end/n, a.Y + dy*end/n}})
		}
		d.left -= end - pos
		pos = end
		if d.left <= 0 {
			d.i++
			d.on = !d.on
		}
	}
	return out
}

// quad is the rectangle around a–b, hw either side; every quad winds the
// same way, so overlapping ones at the joints do not cancel out.
func quad(a, b Point, hw float64) []Point {
	dx, dy := b.X-a.X, b.Y-a.Y
	n := math.Hypot(dx, dy)
	if n == 0 {
		return nil
	}
	nx, ny := -dy/n*hw, dx/n*hw
	return []Point{{a.X + nx, a.Y + ny}, {b.X + nx, b.Y + ny}, {b.X - nx, b.Y - ny}, {a.X - nx, a.Y - ny}}
}

func (r *raster) text(s Shape) {
	size := s.Size * r.scale
	f, ok := r.faces[size]
	if !ok {
		f = newFace(size)
		r.faces[size] = f
	}
	d := font.Drawer{Dst: r.img, Src: image.NewUniform(s.Fill), Face: f}
	x := s.At.X * r.scale
	switch s.Anchor {
	case AnchorMiddle:
		x -= float64(d.MeasureString(s.Text)) / 64 / 2
	case AnchorEnd:
		x -= float64(d.MeasureString(s.Text)) / 64
	}
	d.Dot = fixed.Point26_6{X: fixed.Int26_6(x * 64), Y: fixed.Int26_6(s.At.Y * r.scale * 64)}
	d.DrawString(s.Text)
}
