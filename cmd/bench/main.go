// Command bench measures VRAM Keeper: estimator accuracy against a real
// Ollama, eviction policies on simulated agent traces, swap latency with
// realistic-size models, next-model prediction, the policy against what
// users run instead, latency, the MCP server and metrics, and the desktop
// app's idle footprint. It
// prints each table and writes them to a markdown file, each stamped with
// the machine and Ollama version; sections not run this time keep their
// text from the file.
//
//	go run ./cmd/bench [-out docs/BENCHMARKS.md] [-only estimator,policy,predict,alternatives,latency,mcp,footprint]
//	go run ./cmd/bench -only swap,alternatives   # the long one: ~8 GB of models, 20+ minutes
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
	"syscall"
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
	only := flag.String("only", "policy,predict,alternatives,latency,mcp,estimator,footprint",
		"comma-separated sections to run (swap is long and only runs when named)")
	var o opts
	flag.IntVar(&o.requests, "requests", 5000, "requests per simulated trace")
	flag.DurationVar(&o.idle, "idle", 60*time.Second, "footprint: how long the app idles")
	flag.IntVar(&o.swapReps, "swap-reps", 5, "swap: timed runs per model and case")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *out, strings.Split(*only, ","), o); err != nil {
		log.Error("bench failed", "err", err)
		os.Exit(1)
	}
}

// opts are the knobs of the sections.
type opts struct {
	requests int
	idle     time.Duration
	swapReps int
}

func run(ctx context.Context, log *slog.Logger, out string, only []string, o opts) error {
	mach := machineInfo()
	want := func(s string) bool { return slices.Contains(only, s) }
	var srv *server
	needOllama := want("estimator") || want("latency") || want("footprint") || want("swap")
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
	docDir := ""
	if out != "" {
		docDir = filepath.Dir(out)
		if err := os.MkdirAll(docDir, 0o755); err != nil {
			return fmt.Errorf("output dir: %w", err)
		}
	}
	var fit *swapFit
	type part struct {
		name    string
		ollama  bool
		titles  string // the titles of its sections start with this
		produce func() ([]section, error)
	}
	parts := []part{
		{"estimator", true, "Estimator", func() ([]section, error) { return estimatorSection(ctx, log, srv) }},
		{"policy", false, "Eviction policy", func() ([]section, error) { return policySections(o.requests) }},
		{"swap", true, "Swap latency", func() ([]section, error) {
			secs, f, err := swapSections(ctx, log, srv, o.swapReps, docDir, mach.String())
			fit = f
			return secs, err
		}},
		{"predict", false, "Next-model prediction", func() ([]section, error) {
			s, err := predictSection(o.requests)
			return []section{s}, err
		}},
		{"alternatives", false, "Policy against the alternatives", func() ([]section, error) {
			f, err := loadFit(fit, docDir)
			if err != nil {
				return nil, err
			}
			return alternativesSections(o.requests, f)
		}},
		{"latency", true, "Latency", func() ([]section, error) { return latencySections(ctx, log, srv) }},
		{"mcp", false, "MCP and metrics", func() ([]section, error) {
			s, err := agentsSection()
			return []section{s}, err
		}},
		{"footprint", true, "Footprint", func() ([]section, error) { return footprintSection(ctx, log, srv, o.idle) }},
	}
	var old []docSection
	if b, err := os.ReadFile(out); err == nil {
		old = splitSections(string(b))
	}
	var md strings.Builder
	md.WriteString("# Benchmarks\n\n")
	md.WriteString("Generated by `go run ./cmd/bench`; each section names the machine and Ollama version that produced it, " +
		"and sections not run again keep their last text. Last run " + time.Now().UTC().Format("2006-01-02") + " (" + strings.Join(only, ", ") + ").\n\n")
	used := make([]bool, len(old))
	for _, p := range parts {
		if !want(p.name) {
			for i, d := range old {
				if strings.HasPrefix(d.title, p.titles) {
					md.WriteString(d.text)
					used[i] = true
				}
			}
			continue
		}
		for i, d := range old {
			if strings.HasPrefix(d.title, p.titles) {
				used[i] = true // replaced
			}
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
					if err := os.WriteFile(filepath.Join(docDir, name), []byte(svg), 0o644); err != nil {
						return fmt.Errorf("plot %s: %w", name, err)
					}
				}
			}
		}
	}
	for i, d := range old {
		if !used[i] { // a section no part claims: keep it
			md.WriteString(d.text)
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

// docSection is one "## " section of an existing markdown file.
type docSection struct{ title, text string }

// splitSections cuts markdown at its "## " headings; what precedes the
// first heading (the file's own title) is dropped.
func splitSections(md string) []docSection {
	var out []docSection
	for _, chunk := range strings.SplitAfter(md, "\n") {
		if t, ok := strings.CutPrefix(chunk, "## "); ok {
			out = append(out, docSection{title: strings.TrimSpace(t)})
		}
		if len(out) > 0 {
			out[len(out)-1].text += chunk
		}
	}
	return out
}
