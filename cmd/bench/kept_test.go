package main

import (
	"slices"
	"testing"
)

// Regenerating one part keeps the others' tables as they were.
func TestKeptSections(t *testing.T) {
	md := "# Benchmarks\n\nintro\n\n## Estimator accuracy\n\n| a |\n\n## Estimator accuracy: summary\n\nx\n\n" +
		"## Eviction policy: zipf trace\n\n| b |\n\n## Latency\n\nl\n\n## Something else\n\ns\n"
	parts := []part{{name: "estimator", prefix: "Estimator"}, {name: "policy", prefix: "Eviction policy"}, {name: "latency", prefix: "Latency"}}
	got := keptSections(md, parts)
	want := map[string][]string{
		"estimator": {"## Estimator accuracy\n\n| a |\n\n", "## Estimator accuracy: summary\n\nx\n\n"},
		"policy":    {"## Eviction policy: zipf trace\n\n| b |\n\n"},
		"latency":   {"## Latency\n\nl\n\n"},
	}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("parts %v: a section no part owns was kept", got)
	}
}
