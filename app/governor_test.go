package app

import (
	"testing"
	"time"
)

// The window naps after idleAfter without input, never while something
// moves, and wakes at the next input.
func TestGovernorDecides(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	g := newGovernor(func() time.Time { return now })
	check := func(what string, wantNap bool, wantWait time.Duration) {
		t.Helper()
		if n, w := g.next(); n != wantNap || w != wantWait {
			t.Errorf("%s: nap %v wait %s, want %v %s", what, n, w, wantNap, wantWait)
		}
	}
	check("just used", false, idleAfter)
	now = now.Add(time.Second)
	check("a second later", false, idleAfter-time.Second)
	now = now.Add(idleAfter)
	check("idle", true, 0)
	g.setBusy(true)
	check("idle, a progress bar moving", false, idleAfter)
	g.setBusy(false)
	g.touch()
	check("touched", false, idleAfter)
}
