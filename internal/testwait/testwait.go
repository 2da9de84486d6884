// Package testwait waits in tests for a condition that another process or
// goroutine makes true: polled, bounded, and failing with what it last saw.
package testwait

import (
	"testing"
	"time"
)

// Until polls cond until it holds; past within it fails the test with what
// and cond's last detail. It polls about 50 times over within, between
// 50 ms and 250 ms apart, so a slow condition (a screenshot, a status
// read) does not run back to back.
func Until(t testing.TB, what string, within time.Duration, cond func() (ok bool, detail string)) {
	t.Helper()
	every := min(max(within/50, 50*time.Millisecond), 250*time.Millisecond)
	deadline := time.Now().Add(within)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last saw:\n%s", what, within, detail)
		}
		time.Sleep(every) // polling a condition, bounded by within
	}
}
