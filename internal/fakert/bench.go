package fakert

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/mgrtest"

	"github.com/vramkeeper/vramkeeper/manager"
)

// BenchmarkBestModelForTask: 1,000 discovered models in memory, the best
// one already loaded, so a call is the manager's own work (rank, plan,
// owner round trip, snapshot lookups) with no I/O. Goal: under 10 µs. It lives
// here so that `go test -bench` (manager) and the bench command
// (testing.Benchmark) run the same code.
func BenchmarkBestModelForTask(b *testing.B) {
	rt := New()
	Synthetic(rt, 1000)
	m := mgrtest.Start(b, manager.Options{
		Runtime: rt, GPU: &GPU{RT: rt, Total: 8 << 30},
		// Timers far away: the benchmark measures calls, not polls.
		PollEvery: time.Hour, RefreshEvery: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ctx := context.Background()
	if err := m.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	if n := len(m.Snapshot().Models); n != 1000 {
		b.Fatalf("discovered %d models", n)
	}
	if _, err := m.BestModelForTask(ctx, "code_generation", "coder"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.BestModelForTask(ctx, "code_generation", "coder"); err != nil {
			b.Fatal(err)
		}
	}
}
