package manager

import "testing"

// VerifySnapshots makes m check every snapshot it publishes against one
// built from scratch at that moment, so a change that nobody reported (the
// snapshot kept only by its version would miss it) fails the test at its
// end. It costs a full rebuild per event: tests only.
func VerifySnapshots(t testing.TB, m *Manager) {
	m.verify.Store(true)
	t.Cleanup(func() {
		if err := m.verifyErr.Load(); err != nil {
			t.Errorf("snapshot out of date: %v", *err)
		}
	})
}
