package plot

import (
	"bufio"
	"fmt"
	"html"
	"image/color"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteSVG writes the chart as a self-contained SVG. Each shape carries its
// class and key (data-key) and, where it has one, a <title> that browsers
// show on hover.
func (c *Chart) WriteSVG(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="Go, sans-serif">`+"\n",
		num(c.Width), num(c.Height), num(c.Width), num(c.Height))
	fmt.Fprintf(b, `<rect class="background" width="100%%" height="100%%" fill="%s"/>`+"\n", hex(c.Background))
	for _, s := range c.Shapes {
		attrs := ""
		if s.Class != "" {
			attrs += ` class="` + html.EscapeString(s.Class) + `"`
		}
		if s.Key != "" {
			attrs += ` data-key="` + html.EscapeString(s.Key) + `"`
		}
		var el, body string
		switch s.Kind {
		case KindRect:
			el = "rect"
			attrs += fmt.Sprintf(` x="%s" y="%s" width="%s" height="%s" fill="%s"`, num(s.Box.Min.X), num(s.Box.Min.Y), num(s.Box.Dx()), num(s.Box.Dy()), hex(s.Fill))
		case KindArea:
			el = "path"
			attrs += fmt.Sprintf(` fill="%s" d="%s"`, hex(s.Fill), pathData(s.Paths, true))
		case KindLine:
			el = "path"
			attrs += fmt.Sprintf(` fill="none" stroke="%s" stroke-width="%s"`, hex(s.Stroke), num(s.Width))
			if len(s.Dash) > 0 {
				d := make([]string, len(s.Dash))
				for i, v := range s.Dash {
					d[i] = num(v)
				}
				attrs += ` stroke-dasharray="` + strings.Join(d, " ") + `"`
			}
			attrs += ` d="` + pathData(s.Paths, false) + `"`
		case KindText:
			el = "text"
			attrs += fmt.Sprintf(` x="%s" y="%s" font-size="%s" text-anchor="%s" fill="%s"`, num(s.At.X), num(s.At.Y), num(s.Size), s.Anchor, hex(s.Fill))
			body = html.EscapeString(s.Text)
		}
		if s.Title != "" {
			body = "<title>" + html.EscapeString(s.Title) + "</title>" + body
		}
		if body == "" {
			fmt.Fprintf(b, "<%s%s/>\n", el, attrs)
		} else {
			fmt.Fprintf(b, "<%s%s>%s</%s>\n", el, attrs, body, el)
		}
	}
	b.WriteString("</svg>\n")
	return b.Flush()
}

// pathData is an SVG path: "M x y L x y …", each path closed with Z when
// closed is set.
func pathData(paths [][]Point, closed bool) string {
	var b strings.Builder
	for _, p := range paths {
		for i, q := range p {
			if i == 0 {
				b.WriteString("M")
			} else {
				b.WriteString(" L")
			}
			b.WriteString(num(q.X) + " " + num(q.Y))
		}
		if closed && len(p) > 0 {
			b.WriteString(" Z ")
		}
	}
	return strings.TrimSpace(b.String())
}

// num writes a coordinate with one decimal at most: "12", "12.5".
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

func hex(c color.RGBA) string {
	return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)
}
