package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/faults"
)

func TestSplice(t *testing.T) {
	const sec = "## Fault scenarios\n\nnew table\n"
	block := beginMarker + "\n" + sec + endMarker + "\n"
	fuzzing := "## Fuzzing\n\nthe edges section\n"
	for _, tc := range []struct {
		name, doc, want string
		err             bool
	}{
		{"no file", "", "# Reliability\n\n" + block, false},
		{"the fuzzing section alone: the table goes above it",
			"# Reliability\n\n" + fuzzing, "# Reliability\n\n" + block + "\n" + fuzzing, false},
		{"regenerated: only between the markers",
			"# Reliability\n\nintro\n\n" + beginMarker + "\nold table\n" + endMarker + "\n\n" + fuzzing,
			"# Reliability\n\nintro\n\n" + block + "\n" + fuzzing, false},
		{"no title", fuzzing, "# Reliability\n\n" + block + "\n" + fuzzing, false},
		{"begin without end", "# R\n\n" + beginMarker + "\nold\n" + fuzzing, "", true},
		{"end before begin", "# R\n\n" + endMarker + "\n" + beginMarker + "\n", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splice(tc.doc, sec)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("splice = %q, %v\nwant %q (error %v)", got, err, tc.want, tc.err)
			}
			if err == nil {
				again, _ := splice(got, sec)
				if again != got {
					t.Errorf("a second run changed the file:\n%q\n%q", got, again)
				}
			}
		})
	}
}

func TestSectionShowsFailuresAndEscapes(t *testing.T) {
	results := []faults.Result{
		{Name: "Good", Injected: "a | pipe", Outcome: "fine", Recovery: "from x to y", Served: 2, FailedCleanly: 1,
			Samples: 40, TimeToRecover: 1500 * time.Millisecond},
		{Name: "Bad", Injected: "b", Outcome: "half", Recovery: "from p to q", Stuck: 1, BudgetViolations: 3, Samples: 9,
			Err: errors.New("load x: stuck\nfor 10s")},
	}
	got := section(results, "test machine")
	for _, want := range []string{
		"*test machine*",
		"| Good | a \\| pipe | fine | 2 | 1 | 0 | 0 (40) | 1.5 s |",
		"| Bad | b | **FAILED**: load x: stuck for 10s. half | 0 | 0 | 1 | 3 (9) | – |",
		"- Bad: from p to q.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("section lacks %q:\n%s", want, got)
		}
	}
}
