package plot

import (
	"io"
	"testing"
	"time"
)

// The window redraws its chart every 2 s while the History tab shows it:
// an hour of polls (1800 samples, three models) at a window's size.

func BenchmarkLayout(b *testing.B) {
	w := anHour()
	for b.Loop() {
		Layout(w, Options{Width: 1180, Height: 300, Location: time.UTC})
	}
}

func BenchmarkImage(b *testing.B) {
	c := Layout(anHour(), Options{Width: 1180, Height: 300, Location: time.UTC})
	for b.Loop() {
		c.Image(1)
	}
}

func BenchmarkSVG(b *testing.B) {
	c := Layout(anHour(), Options{Location: time.UTC})
	for b.Loop() {
		if err := c.WriteSVG(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
