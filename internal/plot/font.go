package plot

import (
	"fmt"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
)

// goRegular is the Go font, parsed once: the chart measures and draws its
// text with it, so a PNG looks the same on every machine.
var goRegular = sync.OnceValue(func() *opentype.Font {
	f, err := opentype.Parse(goregular.TTF)
	if err != nil {
		panic(fmt.Sprintf("plot: the embedded Go font does not parse: %v", err))
	}
	return f
})

// newFace is the Go font at size pixels.
func newFace(size float64) font.Face {
	f, err := opentype.NewFace(goRegular(), &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		panic(fmt.Sprintf("plot: a %.1f px face of the Go font: %v", size, err))
	}
	return f
}

// textWidth is how wide s is at size units.
func textWidth(s string, size float64) float64 {
	return float64(font.MeasureString(newFace(size), s)) / 64
}
