package manager_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vramkeeper/vramkeeper/manager"
)

// syncBuffer is a log a manager's goroutines may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStateFolderThatCannotBeWritten: a state folder that cannot be
// written is one warning; the manager loads, evicts and records in memory
// all the same.
func TestStateFolderThatCannotBeWritten(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	rt := newFakeRuntime()
	rt.add("a:1b", 1, nil, 1)
	rt.add("b:1b", 1, nil, 1)
	m, stop := startStop(t, rt, manager.Options{
		StateDir: filepath.Join(blocker, "state"), Settings: manager.Settings{MaxLoaded: 1},
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	for _, name := range []string{"a:1b", "b:1b", "a:1b"} {
		if _, err := m.Load(ctxT(t), name, "test"); err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
	}
	if len(m.History()) < 3 {
		t.Errorf("history %v, want the loads kept in memory", m.History())
	}
	stop() // the last state is written (tried) on the way out
	if n := strings.Count(log.String(), "level=WARN"); n != 1 || !strings.Contains(log.String(), "state folder cannot be written") {
		t.Errorf("%d warnings, want one saying the folder cannot be written:\n%s", n, log.String())
	}
}
