// Package score ranks installed models for a task and a role. It is pure:
// no I/O, no goroutines, no global mutable state, so the manager and the UI
// can call it on a snapshot and tests can drive it with tables.
package score

import (
	"math"
	"strconv"
	"strings"
)

// anchor is one fixed point of the size→priority curve.
type anchor struct {
	paramsB  float64
	priority float64
}

// anchors are the fixed points of Priority. Small models are cheap to keep
// resident and fast to answer, so they get the high priority; between the
// points the curve is linear. Kept as a function-local table (not a package
// var) so nothing can change it at run time.
func anchors() [4]anchor {
	return [4]anchor{
		{3, 10},
		{7, 8},
		{13, 5},
		{24, 1},
	}
}

// Priority maps a model's size in billions of parameters to a priority from
// 1 (huge: slow, costly to keep loaded) to 10 (tiny). Anchors: up to 3B → 10,
// 7B → 8, 13B → 5, 24B and more → 1, linear in between, rounded to the
// nearest integer. Sizes below 1B (and 0, NaN or negative, which mean
// "unknown" or nonsense) get 10: callers that do not know a model's size
// must work it out (for example by counting tensor elements) before asking,
// since guessing "tiny" for an unknown model would favour it.
func Priority(paramsBillions float64) int {
	p := paramsBillions
	if math.IsNaN(p) || p < 0 {
		p = 0
	}
	a := anchors()
	var v float64
	switch {
	case p <= a[0].paramsB:
		v = a[0].priority
	case p >= a[len(a)-1].paramsB:
		v = a[len(a)-1].priority
	default:
		for i := 1; i < len(a); i++ {
			if p <= a[i].paramsB {
				lo, hi := a[i-1], a[i]
				frac := (p - lo.paramsB) / (hi.paramsB - lo.paramsB)
				v = lo.priority + frac*(hi.priority-lo.priority)
				break
			}
		}
	}
	return clamp(int(math.Round(v)), 1, 10)
}

func clamp(v, lo, hi int) int {
	return max(lo, min(hi, v))
}

// ParseParams reads Ollama's details.parameter_size ("7.6B", "494.03M",
// "1.2T", "137M", "8x7B") and returns billions of parameters. It returns 0
// for "" or anything it cannot read: 0 means unknown, and the caller decides
// what to do about it (Ollama leaves the field empty for some imported
// models).
func ParseParams(parameterSize string) float64 {
	s := strings.ToUpper(strings.TrimSpace(parameterSize))
	if s == "" {
		return 0
	}
	// Mixture-of-experts names such as "8x7B" mean experts × size each.
	mult := 1.0
	if i := strings.Index(s, "X"); i > 0 {
		n, err := strconv.ParseFloat(strings.TrimSpace(s[:i]), 64)
		if err != nil || n <= 0 {
			return 0
		}
		mult = n
		s = strings.TrimSpace(s[i+1:])
	}
	scale := 1e-9 // a bare number is a parameter count
	if s != "" {
		switch s[len(s)-1] {
		case 'K':
			scale = 1e-6
		case 'M':
			scale = 1e-3
		case 'B':
			scale = 1
		case 'T':
			scale = 1e3
		}
		if scale != 1e-9 {
			s = strings.TrimSpace(s[:len(s)-1])
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v * scale * mult
}

// FormatParams renders billions of parameters the way Ollama prints them
// ("7.6B", "494M"), or "size unknown" for 0.
func FormatParams(b float64) string {
	switch {
	case b <= 0 || math.IsNaN(b):
		return "size unknown"
	case b < 1:
		return strconv.FormatFloat(math.Round(b*1000), 'f', -1, 64) + "M"
	default:
		return strconv.FormatFloat(math.Round(b*10)/10, 'f', -1, 64) + "B"
	}
}
