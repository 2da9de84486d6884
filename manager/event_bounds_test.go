package manager_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vramkeeper/vramkeeper/manager"
)

// TestHistoryBoundedInSize: the reproduction of issue 20, 150 loads with a
// 1 MiB reason each. Every event keeps a cut reason that says so, the
// history stays small in memory, on disk and over the API, and a restart
// reads it back as small.
func TestHistoryBoundedInSize(t *testing.T) {
	rt := newFakeRuntime()
	rt.add("a:1b", 1, nil, 1)
	rt.add("b:1b", 1, nil, 1)
	dir := t.TempDir()
	m, stop := startStop(t, rt, manager.Options{StateDir: dir, Settings: manager.Settings{MaxLoaded: 1}})
	// Multi-byte characters, so that a cut in the middle of one would show.
	huge := strings.Repeat("é", 1<<19)
	for i := range 150 {
		name := []string{"a:1b", "b:1b"}[i%2]
		if _, err := m.Load(ctxT(t), name, huge); err != nil {
			t.Fatalf("load %d: %v", i, err)
		}
	}
	check := func(when string, h []manager.Event) {
		t.Helper()
		b, _ := json.Marshal(h)
		if len(h) < 100 || len(b) > 1<<20 {
			t.Fatalf("%s: %d events in %d bytes of JSON, want the loads in under 1 MiB", when, len(h), len(b))
		}
		for _, e := range h {
			if len(e.Reason) > 1<<10 || !utf8.ValidString(e.Reason) {
				t.Fatalf("%s: a reason of %d bytes (valid UTF-8: %v)", when, len(e.Reason), utf8.ValidString(e.Reason))
			}
			if strings.HasPrefix(e.Reason, "é") && !strings.HasSuffix(e.Reason, "…") {
				t.Fatalf("%s: a cut reason that does not say so: %q", when, e.Reason[len(e.Reason)-10:])
			}
		}
	}
	check("running", m.History())
	stop()
	m2, _ := startStop(t, rt, manager.Options{StateDir: dir, Settings: manager.Settings{MaxLoaded: 1}})
	check("after a restart", m2.History())
}
