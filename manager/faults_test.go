package manager_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/faults"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
)

// The fault tier: every scenario of internal/faults against a real Ollama
// behind the fault-injecting proxy. Each must pass its own checks (clear
// errors naming the model, the state reconciled, nothing loaded twice)
// with the budget never exceeded on /api/ps and no request stuck past its
// deadline. cmd/reliability runs the same scenarios for docs/RELIABILITY.md.
func TestFaultsAgainstRealOllama(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Ollama")
	}
	srv := ollamatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	began := time.Now()
	env, err := faults.Prepare(ctx, srv, t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("models created and the command built in %s", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Error(err)
		}
	})
	for _, sc := range faults.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			res := sc.Run(ctx, env)
			t.Logf("%s in %s: %s; served %d, failed cleanly %d, stuck %d; /api/ps peak %d of budget %d over %d samples; recovered in %s",
				res.Name, res.Took.Round(time.Millisecond), res.Outcome, res.Served, res.FailedCleanly, res.Stuck,
				res.Peak, res.Budget, res.Samples, res.TimeToRecover.Round(time.Millisecond))
			if res.Err != nil {
				t.Error(res.Err)
			}
			if res.Stuck != 0 || res.BudgetViolations != 0 || res.Samples < 10 {
				t.Errorf("%d stuck, %d of %d /api/ps samples over the budget", res.Stuck, res.BudgetViolations, res.Samples)
			}
			if res.Served == 0 {
				t.Error("no request served: nothing recovered")
			}
		})
	}
}
