package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

// The swap-time fit recovers the coefficients of noiseless swaps, whatever
// mix of cold and warm bytes they had, and refuses data that cannot tell
// them apart.
func TestFitSwapCost(t *testing.T) {
	const fixed, cold, warm = 1.5, 2.0, 0.25 // s, s/GB, s/GB
	var pts []swapPoint
	for _, size := range []int64{5e8, 13e8, 18e8, 41e8} {
		for _, res := range []float64{0, 0.3, 1} {
			gb := float64(size) / 1e9
			s := fixed + cold*gb*(1-res) + warm*gb*res
			pts = append(pts, swapPoint{Case: "cold", FileBytes: size, Resident: res, TTFT: time.Duration(s * float64(time.Second))})
		}
	}
	// Raw Ollama runs are not part of the proxy's fit.
	pts = append(pts, swapPoint{Case: "raw cold", FileBytes: 1e9, TTFT: time.Hour})
	c, err := fitSwapCost(pts)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(c.Fixed.Seconds()-fixed) > 1e-6 || math.Abs(c.ColdPerGB-cold) > 1e-6 || math.Abs(c.WarmPerGB-warm) > 1e-6 {
		t.Errorf("fit %+v, want %.2f s + %.2f s/GB cold + %.2f s/GB warm", c, fixed, cold, warm)
	}
	// Only cold swaps: the warm rate is unknowable.
	var onlyCold []swapPoint
	for _, p := range pts {
		if p.Resident == 0 && p.Case == "cold" {
			onlyCold = append(onlyCold, p)
		}
	}
	if _, err := fitSwapCost(onlyCold); err == nil {
		t.Error("fitted a warm rate from cold swaps only")
	}
}

func TestSplitSections(t *testing.T) {
	md := "# Benchmarks\n\nintro\n\n## Estimator accuracy\n\n| a |\n\n## Footprint\n\n- note\n## Something else\ntext\n"
	got := splitSections(md)
	var titles []string
	joined := ""
	for _, s := range got {
		titles = append(titles, s.title)
		joined += s.text
	}
	if !slices.Equal(titles, []string{"Estimator accuracy", "Footprint", "Something else"}) {
		t.Errorf("titles %q", titles)
	}
	if want := md[len("# Benchmarks\n\nintro\n\n"):]; joined != want {
		t.Errorf("sections do not add up to the file:\n%q\nwant\n%q", joined, want)
	}
}
