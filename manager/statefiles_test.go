package manager_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/fakert"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

var cutModels = []string{"qwen2.5:0.5b", "llama3.2:1b", "qwen2.5:1.5b"}

// runManager starts a manager on dir over a fresh in-memory Ollama with
// cutModels, reads the catalogue, runs f, and stops it.
func runManager(t *testing.T, dir string, log *syncBuffer, f func(ctx context.Context, m *manager.Manager)) {
	t.Helper()
	rt := fakert.New()
	for _, n := range cutModels {
		rt.Add(n, 1, []string{"completion"}, 1.3) // loads measure 1.3 × the estimate
	}
	m, err := manager.New(manager.Options{
		Runtime: rt, GPU: &fakert.GPU{RT: rt, Total: 16 << 30}, StateDir: dir,
		Logger:   slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Settings: manager.Settings{Budget: config.Size{Bytes: 12 << 30}, MaxLoaded: 3},
	})
	if err != nil {
		t.Fatalf("the manager does not start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	f(ctx, m)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestStartsFromCutStateFiles: state.json, catalog.json or history.jsonl
// cut short at any byte (a crash, a full disk, another tool), and the app
// still starts, says what it set aside, and keeps every measured size and
// event that was written whole.
func TestStartsFromCutStateFiles(t *testing.T) {
	src := t.TempDir()
	measured := map[string]uint64{}
	runManager(t, src, &syncBuffer{}, func(ctx context.Context, m *manager.Manager) {
		for _, n := range cutModels {
			if _, err := m.Load(ctx, n, "test"); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range cutModels {
			if err := m.Unload(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
	})
	runManager(t, src, &syncBuffer{}, func(_ context.Context, m *manager.Manager) {
		for _, n := range cutModels {
			v, _ := m.Snapshot().Model(n)
			if !v.Calibrated {
				t.Fatalf("%s not measured after a load and a restart", n)
			}
			measured[n] = v.EstimateBytes
		}
	})
	// Every byte of state.json (the measured sizes); some 40 cuts of the
	// others, each costing a catalogue rewrite with its fsyncs.
	cuts := map[string]int{"state.json": 0, "catalog.json": 40, "history.jsonl": 40}
	for file, n := range cuts {
		t.Run(file, func(t *testing.T) {
			whole, err := os.ReadFile(filepath.Join(src, file))
			if err != nil {
				t.Fatal(err)
			}
			step := 1
			if n > 0 {
				step = max(1, len(whole)/n)
			}
			for cut := 0; cut < len(whole); cut += step {
				dir := t.TempDir()
				for _, f := range []string{"state.json", "catalog.json", "history.jsonl"} {
					b, _ := os.ReadFile(filepath.Join(src, f))
					if f == file {
						b = b[:cut]
					}
					if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				log := &syncBuffer{}
				runManager(t, dir, log, func(_ context.Context, m *manager.Manager) {
					snap := m.Snapshot()
					for _, n := range cutModels {
						v, _ := snap.Model(n)
						if v.Calibrated && v.EstimateBytes != measured[n] {
							t.Fatalf("cut %s at %d: %s measured %d, was %d", file, cut, n, v.EstimateBytes, measured[n])
						}
					}
					// Cut in the closing brackets, every size was written whole.
					if file != "state.json" || cut >= len(whole)-3 {
						for _, n := range cutModels { // the sizes live in state.json: all kept
							if v, _ := snap.Model(n); !v.Calibrated {
								t.Fatalf("cut %s at %d: lost the measured size of %s", file, cut, n)
							}
						}
					}
					if file == "history.jsonl" && len(m.History()) == 0 && cut > len(whole)/2 {
						t.Fatalf("cut history at %d/%d: no event kept", cut, len(whole))
					}
				})
				if file != "history.jsonl" && cut < len(whole)-1 {
					aside, _ := filepath.Glob(filepath.Join(dir, file+".damaged-*"))
					if len(aside) != 1 || !strings.Contains(log.String(), filepath.Base(aside[0])) {
						t.Fatalf("cut %s at %d: set aside %v; log:\n%s", file, cut, aside, log)
					}
				}
			}
		})
	}
}
