// Command bench measures VRAM Keeper: estimator accuracy against a real
// Ollama, eviction policies on simulated agent traces, latency, and the
// desktop app's idle footprint. It prints each table and writes them all to
// a markdown file, each stamped with the machine and Ollama version.
//
//	go run ./cmd/bench [-out docs/BENCHMARKS.md] [-only estimator,policy,latency,footprint]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// section is one table of the report.
type section struct {
	Title  string
	Intro  string
	Header []string
	Rows   [][]string
	Notes  []string
	Plots  map[string]string // file name (beside the markdown) -> SVG
	// Stamp replaces the part's machine and Ollama line when the section
	// was measured on another server than the part's.
	Stamp string
}

func (s section) markdown(machine string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", s.Title)
	if machine != "" {
		fmt.Fprintf(&b, "*%s*\n\n", machine)
	}
	if s.Intro != "" {
		b.WriteString(s.Intro + "\n\n")
	}
	if len(s.Header) > 0 {
		b.WriteString("| " + strings.Join(s.Header, " | ") + " |\n|")
		for range s.Header {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, r := range s.Rows {
			b.WriteString("| " + strings.Join(r, " | ") + " |\n")
		}
		b.WriteString("\n")
	}
	for _, n := range s.Notes {
		b.WriteString("- " + n + "\n")
	}
	if len(s.Notes) > 0 {
		b.WriteString("\n")
	}
	for _, name := range sortedKeys(s.Plots) {
		fmt.Fprintf(&b, "![%s](%s)\n\n", name, name)
	}
	return b.String()
}

// text renders the table for a terminal.
func (s section) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "== %s ==\n", s.Title)
	w := make([]int, len(s.Header))
	for i, h := range s.Header {
		w[i] = len(h)
	}
	for _, r := range s.Rows {
		for i, c := range r {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			fmt.Fprintf(&b, "%-*s  ", w[i], c)
		}
		b.WriteString("\n")
	}
	if len(s.Header) > 0 {
		line(s.Header)
	}
	for _, r := range s.Rows {
		line(r)
	}
	for _, n := range s.Notes {
		b.WriteString("  * " + n + "\n")
	}
	return b.String()
}

// moduleVersion is the version of dependency path this command was built with.
func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func main() {
	out := flag.String("out", "docs/BENCHMARKS.md", "markdown file to write (\"\" writes none)")
	only := flag.String("only", "policy,latency,estimator,footprint", "comma-separated sections to run")
	requests := flag.Int("requests", 5000, "requests per simulated trace")
	idle := flag.Duration("idle", 60*time.Second, "footprint: how long the app idles")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, log, *out, strings.Split(*only, ","), *requests, *idle); err != nil {
		log.Error("bench failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, out string, only []string, requests int, idle time.Duration) error {
	mach := machineInfo()
	want := func(s string) bool { return slices.Contains(only, s) }
	var srv *server
	needOllama := want("estimator") || want("latency") || want("footprint")
	ollamaVersion := "not used"
	if needOllama {
		var err error
		if srv, err = startOllama(ctx); err != nil {
			log.Warn("no real Ollama: its rows will be missing", "err", err)
		} else {
			defer srv.stop()
			ollamaVersion = srv.Version
			// A binary built from the module (scripts/ollama-build.sh) has no
			// version stamped in; name the module version it was built from.
			if mv := moduleVersion("github.com/ollama/ollama"); mv != "" && srv.Version == "0.0.0" {
				ollamaVersion = mv + " (built from the module; the binary reports 0.0.0)"
			}
			log.Info("ollama started", "url", srv.URL, "version", srv.Version)
		}
	}
	stamp := func(withOllama bool) string {
		s := mach.String()
		if withOllama {
			s += "; Ollama " + ollamaVersion + " (CPU only)"
		}
		return s
	}
	parts := []part{
		{"estimator", "Estimator", true, func() ([]section, error) { return estimatorSection(ctx, log, srv) }},
		{"policy", "Eviction policy", false, func() ([]section, error) { return policySections(requests) }},
		{"latency", "Latency", true, func() ([]section, error) { return latencySections(ctx, log, srv) }},
		{"footprint", "Footprint", true, func() ([]section, error) { return footprintSection(ctx, log, srv, idle) }},
	}
	// Parts not run keep their tables from the existing file, so one part
	// can be regenerated alone (-only estimator).
	var kept map[string][]string
	if out != "" {
		if b, err := os.ReadFile(out); err == nil {
			kept = keptSections(string(b), parts)
		}
	}
	if out != "" {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return fmt.Errorf("output dir: %w", err)
		}
	}
	var md strings.Builder
	md.WriteString("# Benchmarks\n\n")
	md.WriteString("Generated by `go run ./cmd/bench` (" + time.Now().UTC().Format("2006-01-02") + "); rerun it to refresh. " +
		"Every table names the machine and Ollama version that produced it.\n\n")
	for _, p := range parts {
		if !want(p.name) {
			for _, old := range kept[p.name] {
				md.WriteString(old)
			}
			continue
		}
		began := time.Now()
		secs, err := p.produce()
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		log.Info("section done", "name", p.name, "took", time.Since(began).Round(time.Millisecond))
		for _, s := range secs {
			fmt.Println(s.text())
			st := stamp(p.ollama)
			if s.Stamp != "" {
				st = s.Stamp
			}
			md.WriteString(s.markdown(st))
			if out != "" {
				for name, svg := range s.Plots {
					if err := os.WriteFile(filepath.Join(filepath.Dir(out), name), []byte(svg), 0o644); err != nil {
						return fmt.Errorf("plot %s: %w", name, err)
					}
				}
			}
		}
	}
	if out == "" {
		return nil
	}
	if err := os.WriteFile(out, []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	log.Info("wrote", "file", out)
	return nil
}

// part is one group of tables, owning the sections whose titles start with
// prefix.
type part struct {
	name, prefix string
	ollama       bool
	produce      func() ([]section, error)
}

// keptSections splits an existing report into its "## " sections and files
// each under the part whose prefix its title starts with.
func keptSections(md string, parts []part) map[string][]string {
	out := map[string][]string{}
	chunks := strings.Split("\n"+md, "\n## ")
	for _, c := range chunks[1:] {
		title, _, _ := strings.Cut(c, "\n")
		for _, p := range parts {
			if strings.HasPrefix(title, p.prefix) {
				out[p.name] = append(out[p.name], "## "+strings.TrimRight(c, "\n")+"\n\n")
				break
			}
		}
	}
	return out
}
