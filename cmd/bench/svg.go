package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// bar is one bar of a chart.
type bar struct {
	Label string
	Value float64
}

// barChart draws horizontal bars as a self-contained SVG: the plots are
// written by the bench itself so that regenerating the docs needs Go only.
// Negative values extend left of the zero line.
func barChart(title, unit string, bars []bar) string {
	const rowH, labelW, plotW, pad = 18, 300, 420, 10
	lo, hi := 0.0, 0.0
	for _, b := range bars {
		lo, hi = math.Min(lo, b.Value), math.Max(hi, b.Value)
	}
	if hi == lo {
		hi = lo + 1
	}
	x := func(v float64) float64 { return labelW + (v-lo)/(hi-lo)*plotW }
	h := pad*2 + 24 + rowH*len(bars) + 20
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n",
		labelW+plotW+90, h)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n",
		pad, pad+12, html.EscapeString(title))
	top := pad + 24
	for i, b := range bars {
		y := top + i*rowH
		x0, x1 := x(0), x(b.Value)
		if x1 < x0 {
			x0, x1 = x1, x0
		}
		color := "#4a78c2"
		if b.Value < 0 {
			color = "#c2574a"
		}
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-6, y+12, html.EscapeString(b.Label))
		fmt.Fprintf(&s, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`, x0, y+2, math.Max(x1-x0, 0.5), rowH-4, color)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d">%s</text>`+"\n", math.Max(x(b.Value), x(0))+4, y+12, html.EscapeString(fmtNum(b.Value)+unit))
	}
	fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", x(0), top, x(0), top+rowH*len(bars))
	s.WriteString("</svg>\n")
	return s.String()
}

func fmtNum(v float64) string {
	if math.Abs(v) >= 100 || v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
