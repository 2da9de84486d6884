// Command reliability runs the fault scenarios (internal/faults) against a
// real Ollama behind the fault-injecting proxy and writes their table into
// docs/RELIABILITY.md, between its marker comments, leaving the rest of the
// file (the fuzzing section) as it is. It exits 1 when a scenario fails,
// after writing the table that shows it.
//
//	go run ./cmd/reliability [-out docs/RELIABILITY.md] [-only "Load hangs,Stream cut"] [-v]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/faults"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
)

func main() {
	out := flag.String("out", "docs/RELIABILITY.md", "markdown file to update (\"\" writes none)")
	only := flag.String("only", "", "comma-separated scenario names to run (default: all)")
	verbose := flag.Bool("v", false, "log what the managers do")
	flag.Parse()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, log, *out, *only); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, out, only string) error {
	var scenarios []faults.Scenario
	for _, sc := range faults.Scenarios() {
		if only == "" || slices.Contains(strings.Split(only, ","), sc.Name) {
			scenarios = append(scenarios, sc)
		}
	}
	if len(scenarios) == 0 {
		return fmt.Errorf("-only %q names no scenario", only)
	}
	bin, err := ollamatest.Binary()
	if err != nil {
		return fmt.Errorf("no ollama binary (scripts/ollama-build.sh builds it): %w", err)
	}
	dir, err := os.MkdirTemp("", "vk-reliability-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := ollamatest.Launch(bin, filepath.Join(dir, "ollama"))
	if err != nil {
		if srv != nil {
			err = fmt.Errorf("%w; log:\n%s", err, srv.LogTail())
		}
		return err
	}
	defer srv.Stop()
	env, err := faults.Prepare(ctx, srv, filepath.Join(dir, "scenarios"), log)
	if err != nil {
		return err
	}
	defer env.Close()

	var results []faults.Result
	var failed []error
	for _, sc := range scenarios {
		res := sc.Run(ctx, env)
		fmt.Printf("%-26s %6.1f s  served %d, failed cleanly %d, stuck %d, budget violations %d/%d  %s\n",
			res.Name, res.Took.Seconds(), res.Served, res.FailedCleanly, res.Stuck, res.BudgetViolations, res.Samples, res.Outcome)
		if res.Err != nil {
			fmt.Printf("    FAILED: %v\n", res.Err)
			failed = append(failed, fmt.Errorf("%s: %w", res.Name, res.Err))
		}
		results = append(results, res)
	}
	if out != "" {
		version, err := ollamatest.PinnedVersion()
		if err != nil {
			version = "unknown version"
		}
		stamp := fmt.Sprintf("%d cores, %s/%s, %s; Ollama %s built from the module (CPU only); %s",
			runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), version, time.Now().UTC().Format("2006-01-02"))
		if err := update(out, section(results, stamp)); err != nil {
			return err
		}
		log.Info("wrote", "file", out)
	}
	return errors.Join(failed...)
}

// update splices section into the file at path between the markers,
// creating the file when there is none.
func update(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc, err := splice(string(old), section)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
