package transfer

import (
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// A pull as Ollama reports it: the meter sums the files, measures the rate
// over the last seconds and says the time left, step by step.
func TestMeter(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	const gb = 1_000_000_000
	weights := func(done uint64) serving.PullProgress {
		return serving.PullProgress{Status: "pulling 6a0746a1ec1a", Digest: "sha256:w", Total: 2 * gb, Completed: done}
	}
	steps := []struct {
		at   time.Duration
		p    serving.PullProgress
		line string
		frac float64
	}{
		{0, serving.PullProgress{Status: "pulling manifest"}, "Reading the manifest", 0},
		{0, weights(0), "0 B of 1.9 GiB", 0},
		{time.Second, weights(35_000_000), "33 MiB of 1.9 GiB · 35 MB/s · 56 s left", 0.0175},
		{2 * time.Second, weights(70_000_000), "66 MiB of 1.9 GiB · 35 MB/s · 55 s left", 0.035},
		// The rate follows the last five seconds (from the update before
		// them): slower now.
		{10 * time.Second, weights(110_000_000), "104 MiB of 1.9 GiB · 5 MB/s · 6 min left", 0.055},
		{12 * time.Second, serving.PullProgress{Status: "pulling 8c17c2ebb0ea", Digest: "sha256:t", Total: 7_000, Completed: 7_000}, "104 MiB of 1.9 GiB · 4 MB/s · 8 min left", 0.055},
		{13 * time.Second, serving.PullProgress{Status: "verifying sha256 digest"}, "Checking the download", 0.055},
		{13 * time.Second, serving.PullProgress{Status: "writing manifest"}, "Installing", 0.055},
		{13 * time.Second, serving.PullProgress{Status: "success"}, "Done", 0.055},
	}
	var m Meter
	for i, s := range steps {
		m.Add(s.p, t0.Add(s.at))
		if got := m.Line(); got != s.line {
			t.Errorf("step %d: line %q, want %q", i, got, s.line)
		}
		if got := m.Fraction(); got < s.frac-0.001 || got > s.frac+0.001 {
			t.Errorf("step %d: fraction %.4f, want %.4f", i, got, s.frac)
		}
	}
}

func TestWords(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Rate(950), "950 B/s"}, {Rate(35e6), "35 MB/s"}, {Rate(1.25e9), "1.2 GB/s"},
		{Duration(25 * time.Second), "25 s"}, {Duration(4*time.Minute + 40*time.Second), "5 min"},
		{Duration(65 * time.Minute), "1 h 5 min"},
		{Bar(0.5, 10), "[#####-----]"}, {Bar(1.2, 4), "[####]"}, {Bar(-1, 3), "[---]"},
	} {
		if tc.got != tc.want {
			t.Errorf("%q, want %q", tc.got, tc.want)
		}
	}
}
