package app

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
)

// Gauge is what the tray icon shows: our models' use against the budget,
// with other programs' use and the card's size for scale.
type Gauge struct {
	Used, Others, Budget, Total uint64
	// Up is false while Ollama is unreachable: the icon turns grey, since
	// its numbers are stale.
	Up bool
}

// Icon geometry, in pixels of a 64×64 image. The bar is a tall rounded
// frame; its inside is the scale.
const (
	IconSize = 64
	barX0    = 14
	barX1    = 50
	barY0    = 4
	barY1    = 60
	frame    = 3
	// innerH is the height of the scale inside the frame.
	innerH = barY1 - barY0 - 2*frame
)

// Colours of the gauge. Thresholds follow the issue: amber past 75 % of the
// budget, red past 90 %.
var (
	ColorOK      = color.RGBA{0x2e, 0xa0, 0x43, 0xff}
	ColorWarn    = color.RGBA{0xf0, 0xa0, 0x00, 0xff}
	ColorFull    = color.RGBA{0xd9, 0x2d, 0x20, 0xff}
	ColorDown    = color.RGBA{0x8c, 0x8c, 0x8c, 0xff}
	colorOthers  = color.RGBA{0x5b, 0x6b, 0x80, 0xff}
	colorFrame   = color.RGBA{0x30, 0x30, 0x30, 0xff}
	colorEmpty   = color.RGBA{0xec, 0xec, 0xec, 0xff}
	colorBudgetL = color.RGBA{0x10, 0x10, 0x10, 0xff}
)

// Fraction is Used/Budget, or 0 with no budget.
func (g Gauge) Fraction() float64 {
	if g.Budget == 0 {
		return 0
	}
	return float64(g.Used) / float64(g.Budget)
}

// Color is the fill colour for g.
func (g Gauge) Color() color.RGBA {
	f := g.Fraction()
	switch {
	case !g.Up:
		return ColorDown
	case f > 0.90:
		return ColorFull
	case f > 0.75:
		return ColorWarn
	default:
		return ColorOK
	}
}

// scale is the byte count the full height of the bar stands for: the card
// when it is bigger than the budget (the budget line then sits below the
// top), else the budget.
func (g Gauge) scale() uint64 {
	return max(g.Total, g.Budget, 1)
}

// px converts bytes to a height in pixels of the scale, rounded, clamped.
func (g Gauge) px(b uint64) int {
	h := int(float64(b)/float64(g.scale())*innerH + 0.5)
	return min(max(h, 0), innerH)
}

// layout is everything the picture depends on, in pixels: two gauges with
// the same layout draw the same image, so the tray is only redrawn when
// this changes.
type layout struct {
	used, others, budget int
	col                  color.RGBA
}

func (g Gauge) layout() layout {
	used := g.px(g.Used)
	return layout{
		used:   used,
		others: min(g.px(g.Others), innerH-used),
		budget: g.px(g.Budget),
		col:    g.Color(),
	}
}

// GaugeIcon draws the tray icon: a vertical bar filled from the bottom with
// our models' use in the gauge colour, other programs' use stacked above it
// in slate, and a dark line at the budget when the card is bigger than it.
func GaugeIcon(g Gauge) image.Image {
	return drawLayout(g.layout())
}

func drawLayout(l layout) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, IconSize, IconSize))
	fill := func(x0, y0, x1, y1 int, c color.RGBA) {
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				img.SetRGBA(x, y, c)
			}
		}
	}
	fill(barX0, barY0, barX1, barY1, colorFrame)
	ix0, ix1 := barX0+frame, barX1-frame
	top, bottom := barY0+frame, barY1-frame
	fill(ix0, top, ix1, bottom, colorEmpty)
	fill(ix0, bottom-l.used, ix1, bottom, l.col)
	fill(ix0, bottom-l.used-l.others, ix1, bottom-l.used, colorOthers)
	if l.budget < innerH {
		// The line crosses the frame so it reads as a mark on the scale.
		y := bottom - l.budget
		fill(barX0-4, y-1, barX1+4, y+1, colorBudgetL)
	}
	// Round the frame's corners a little: a plain rectangle looks like a
	// broken image in most trays.
	for _, p := range [][2]int{{barX0, barY0}, {barX1 - 1, barY0}, {barX0, barY1 - 1}, {barX1 - 1, barY1 - 1}} {
		img.SetRGBA(p[0], p[1], color.RGBA{})
	}
	return img
}

// EncodePNG encodes an image for fyne.NewStaticResource and the tray.
func EncodePNG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("encode icon: %w", err)
	}
	return b.Bytes(), nil
}

// AppIcon is the application's icon (assets/icon.png is this image): the
// gauge two-thirds full and green.
func AppIcon() image.Image {
	return GaugeIcon(Gauge{Used: 60, Budget: 100, Total: 100, Up: true})
}

// ICO wraps PNG bytes in an ICO container (an ICONDIR and one
// ICONDIRENTRY pointing at the PNG, which Windows Vista and later read):
// the tray on Windows and the installer take ICO files, not PNG.
func ICO(pngBytes []byte) ([]byte, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(pngBytes))
	if err != nil {
		return nil, fmt.Errorf("ico: %w", err)
	}
	if cfg.Width > 256 || cfg.Height > 256 {
		return nil, fmt.Errorf("ico: %dx%d is larger than 256x256", cfg.Width, cfg.Height)
	}
	// 0 means 256 in the entry's one-byte sizes.
	dim := func(n int) byte { return byte(n % 256) }
	const header = 6 + 16
	b := make([]byte, header, header+len(pngBytes))
	binary.LittleEndian.PutUint16(b[2:], 1) // type: icon
	binary.LittleEndian.PutUint16(b[4:], 1) // one image
	e := b[6:]
	e[0], e[1] = dim(cfg.Width), dim(cfg.Height)
	binary.LittleEndian.PutUint16(e[4:], 1)  // colour planes
	binary.LittleEndian.PutUint16(e[6:], 32) // bits per pixel
	binary.LittleEndian.PutUint32(e[8:], uint32(len(pngBytes)))
	binary.LittleEndian.PutUint32(e[12:], header)
	return append(b, pngBytes...), nil
}
