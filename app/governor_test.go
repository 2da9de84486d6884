package app

import (
	"testing"
	"time"
)

// The window naps after idleAfter without input, longer the longer it is
// left alone (up to maxNap), never while something moves, and wakes at
// the next input.
func TestGovernorDecides(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	g := newGovernor(func() time.Time { return now })
	check := func(what string, wantNap, wantWait time.Duration) {
		t.Helper()
		if n, w := g.next(); n != wantNap || w != wantWait {
			t.Errorf("%s: nap %s wait %s, want %s %s", what, n, w, wantNap, wantWait)
		}
	}
	check("just used", 0, idleAfter)
	now = now.Add(time.Second)
	check("a second later", 0, idleAfter-time.Second)
	now = now.Add(idleAfter)
	check("idle", minNap, 0)
	now = now.Add(6 * time.Second)
	check("idle 10 s", 500*time.Millisecond, 0)
	now = now.Add(time.Minute)
	check("idle a minute", maxNap, 0)
	g.setBusy(true)
	check("idle, a progress bar moving", 0, idleAfter)
	g.setBusy(false)
	g.touch()
	check("touched", 0, idleAfter)
}
