package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/describe"
	"github.com/vramkeeper/vramkeeper/internal/instance"
	"github.com/vramkeeper/vramkeeper/internal/plot"
	"github.com/vramkeeper/vramkeeper/internal/version"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/keeper"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// Exit codes, so scripts can tell failures apart.
const (
	ExitOK           = 0
	ExitError        = 1
	ExitUsage        = 2
	ExitUnreachable  = 3
	ExitUnknownModel = 4
	ExitUnknownTask  = 5
	ExitNeverFits    = 6
	ExitLoadFailed   = 7
	// ExitAnotherInstance: another VRAM Keeper manages this state folder
	// (and its Ollama), and this command cannot hand over to it.
	ExitAnotherInstance = 8
	// ExitRefused: the running instance refused this command (wrong or
	// missing token, another vramkeeper release).
	ExitRefused = 9
	// ExitYielded: the GPU was given back (yield); nothing loads until
	// `vramkeeper restore`.
	ExitYielded = 10
)

// ExitCode maps an error to the documented exit code.
func ExitCode(err error) int {
	var u usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &u), errors.Is(err, flag.ErrHelp):
		return ExitUsage
	case errors.Is(err, manager.ErrUnreachable):
		return ExitUnreachable
	case errors.Is(err, manager.ErrModelUnknown):
		return ExitUnknownModel
	case errors.Is(err, manager.ErrUnknownTask), errors.Is(err, manager.ErrUnknownRole), errors.Is(err, manager.ErrNoCandidate):
		return ExitUnknownTask
	case errors.Is(err, manager.ErrNeverFits), errors.Is(err, evict.ErrNoRoom):
		return ExitNeverFits
	case errors.Is(err, manager.ErrYielded):
		return ExitYielded
	case errors.Is(err, manager.ErrLoadFailed), errors.Is(err, manager.ErrSpilled):
		return ExitLoadFailed
	case errors.Is(err, instance.ErrHeld):
		return ExitAnotherInstance
	case errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrVersionMismatch):
		return ExitRefused
	}
	return ExitError
}

// Desktop is the desktop app; main.go supplies it so this package does not
// import Fyne.
type Desktop struct {
	// Tray runs the manager, the API and the tray (no subcommand).
	Tray func(ctx context.Context, env *Env) error
	// Window runs the window as a client of a running instance's API
	// (`vramkeeper window`); the tray starts it as a child process.
	Window func(ctx context.Context, env *Env) error
}

// Main runs one invocation and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, desktop *Desktop) int {
	f, pos, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	cmd := ""
	if len(pos) > 0 {
		cmd, pos = pos[0], pos[1:]
	}
	err = run(ctx, cmd, pos, f, stdout, stderr, desktop)
	if err != nil {
		fmt.Fprintf(stderr, "vramkeeper: %v\n", err)
	}
	return ExitCode(err)
}

func run(ctx context.Context, cmd string, pos []string, f Flags, stdout, stderr io.Writer, desktop *Desktop) error {
	want := map[string][2]int{ // min, max positional arguments
		"": {0, 0}, "window": {0, 0}, "serve": {0, 0}, "models": {0, 0}, "status": {0, 0},
		"best": {1, 2}, "load": {1, 1}, "unload": {1, 1}, "pull": {1, 1},
		"yield": {0, 0}, "restore": {0, 0}, "history": {0, 0}, "version": {0, 0}, "mcp": {0, 0},
	}
	n, ok := want[cmd]
	if !ok {
		return usageError{fmt.Errorf("unknown command %q (run vramkeeper -h)", cmd)}
	}
	if len(pos) < n[0] || len(pos) > n[1] {
		return usageError{fmt.Errorf("%s: wrong number of arguments (run vramkeeper -h)", cmd)}
	}
	if cmd == "version" { // needs no config, state or server
		fmt.Fprintln(stdout, version.String())
		return nil
	}
	env, err := Setup(f, cmd != "" && cmd != "serve" && cmd != "window", stdout, stderr)
	if err != nil {
		return err
	}
	defer env.Close()
	switch cmd {
	case "":
		if desktop == nil || desktop.Tray == nil {
			return usageError{errors.New("this build has no desktop app; use a subcommand")}
		}
		return desktop.Tray(ctx, env)
	case "window":
		if desktop == nil || desktop.Window == nil {
			return usageError{errors.New("this build has no desktop app; use a subcommand")}
		}
		return desktop.Window(ctx, env)
	case "serve":
		return Serve(ctx, env)
	}
	mode := "cli"
	if cmd == "mcp" {
		mode = "mcp"
	}
	k, closeK, err := env.keeper(ctx, mode)
	if err != nil {
		return err
	}
	defer closeK()
	switch cmd {
	case "mcp":
		return cmdMCP(ctx, env, k)
	case "models":
		return cmdModels(ctx, env, k)
	case "status":
		return cmdStatus(ctx, env, k)
	case "best":
		role := ""
		if len(pos) > 1 {
			role = pos[1]
		}
		return cmdBest(ctx, env, k, pos[0], role)
	case "load":
		return cmdLoad(ctx, env, k, pos[0])
	case "unload":
		if err := k.Unload(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "unloaded %s\n", pos[0])
		return nil
	case "pull":
		return cmdPull(ctx, env, k, pos[0])
	case "yield":
		return cmdYield(ctx, env, k)
	case "restore":
		return cmdRestore(ctx, env, k)
	case "history":
		return cmdHistory(ctx, env, k)
	}
	return nil
}

// inProcess reports whether k is a manager this command runs (and stops
// when it exits), not a running instance.
func inProcess(k keeper.Keeper) bool {
	_, ok := k.(*manager.Manager)
	return ok
}

// keeper returns the running instance's API when one answers, else starts
// the manager in this process (for mode "cli" or "mcp") and reads Ollama
// once; for mcp, which runs as long as its client, an Ollama that does not
// answer yet is not an error (the tools say so until it does). It never manages the
// Ollama of a running instance beside it: an instance that refuses this
// command (token, version) is an error, and so is one that holds the
// state folder but does not answer.
func (e *Env) keeper(ctx context.Context, mode string) (keeper.Keeper, func(), error) {
	k, err := e.remote(ctx, e.Config.Listen)
	if err == nil {
		return k, func() {}, nil
	}
	if !errors.Is(err, client.ErrNotRunning) && !errors.Is(err, client.ErrOtherInstance) {
		return nil, nil, err
	}
	// Another instance on our address: its models are not ours, and this
	// command goes on without it, unless it manages our very Ollama
	// (from another state folder), beside which no manager may run.
	other := err
	var oi *client.OtherInstanceError
	if errors.As(err, &oi) && oi.Got != nil && oi.Got.Ollama == oi.Want.Ollama {
		return nil, nil, fmt.Errorf("%w: the VRAM Keeper on %s (PID %d) manages Ollama at %s from the state folder %s, and this command was given %s; "+
			"run it with --state-dir %s, or stop that one first", instance.ErrHeld, oi.At, oi.Got.PID, oi.Got.Ollama, oi.Got.StateDir, oi.Want.StateDir, oi.Got.StateDir)
	}
	if err := e.Own(mode); err != nil {
		var held *instance.HeldError
		if !errors.As(err, &held) {
			return nil, nil, err
		}
		// It listens elsewhere than our config says: use it there.
		if a := held.Holder.API; a != "" && a != e.Config.Listen {
			k, rerr := e.remote(ctx, a)
			if rerr == nil {
				return k, func() {}, nil
			}
			if !errors.Is(rerr, client.ErrNotRunning) {
				return nil, nil, rerr
			}
		}
		if errors.Is(other, client.ErrOtherInstance) {
			return nil, nil, fmt.Errorf("%w, but its API is not where it says: %w; this command will not manage the same Ollama beside it", err, other)
		}
		return nil, nil, fmt.Errorf("%w; its API does not answer, and this command will not manage the same Ollama beside it", err)
	}
	stop := e.Start(ctx)
	if err := e.Manager.Refresh(ctx); err != nil {
		if mode != "mcp" || !errors.Is(err, manager.ErrUnreachable) {
			stop()
			return nil, nil, err
		}
		fmt.Fprintf(e.Stderr, "vramkeeper: %v; the tools say so until it answers\n", err)
	}
	return e.Manager, stop, nil
}

func (e *Env) printJSON(v any) error {
	enc := json.NewEncoder(e.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdModels(ctx context.Context, env *Env, k keeper.Keeper) error {
	s := k.Snapshot()
	if env.Flags.JSON {
		if s.Models == nil {
			s.Models = []manager.ModelView{}
		}
		return env.printJSON(s.Models)
	}
	// Estimates depend on the server (its engine and version) and the card.
	fmt.Fprintf(env.Stdout, "estimates for %s, for a card of %s (%s)\n", serverName(s, env.OllamaURL.String()),
		config.FormatBytes(s.VRAM.Total), card.SourceLabel(s.VRAM.Source))
	w := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tPARAMS\tQUANT\tCONTEXT\tESTIMATE\tFITS\tMAX CONTEXT NOW\tPRIORITY\tSTATE")
	now := time.Now()
	var failed []manager.ModelView
	for _, m := range s.Models {
		est := config.FormatBytes(m.EstimateBytes)
		if m.Calibrated {
			est += " (measured)"
		}
		if m.EstimateErr != "" && m.EstimateBytes == 0 {
			est = "unknown"
		}
		fits := "yes" + describe.Placement(m)
		if !m.Fits {
			fits = "too big"
		}
		state := describe.Status(s, m, now)
		if describe.Retry(m, now) != "" {
			failed = append(failed, m)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", m.Name, m.Parameters, m.Quantization,
			describe.Context(m), est, fits, describe.MaxFit(m), m.Priority, state)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(s.Models) == 0 {
		fmt.Fprintln(env.Stdout, "no models installed (ollama pull one first)")
	}
	for _, m := range failed {
		fmt.Fprintf(env.Stdout, "%s failed to load, %s: %s\n", m.Name, describe.Retry(m, now), m.Error)
	}
	return nil
}

// serverName names the Ollama a snapshot comes from: "Ollama 0.17.4 at
// http://127.0.0.1:11434".
func serverName(s manager.Snapshot, url string) string {
	if s.Version == "" {
		return "Ollama at " + url
	}
	return "Ollama " + s.Version + " at " + url
}

// StatusJSON is the documented shape of `status --json`.
type StatusJSON struct {
	BudgetBytes   uint64 `json:"budget_bytes"`
	UsedBytes     uint64 `json:"used_bytes"`
	TotalBytes    uint64 `json:"total_bytes"`
	OtherBytes    uint64 `json:"other_bytes"`
	FreeBytes     uint64 `json:"free_bytes"`
	Source        string `json:"source"`
	SourceNote    string `json:"source_note,omitempty"`
	Ollama        string `json:"ollama"`
	OllamaUp      bool   `json:"ollama_up"`
	OllamaVersion string `json:"ollama_version,omitempty"`
	// Loading names the model being loaded now, for LoadingSeconds.
	Loading        string `json:"loading,omitempty"`
	LoadingSeconds int    `json:"loading_seconds,omitempty"`
	// Yielded: the GPU was given back; YieldedModels are what a restore
	// puts back.
	Yielded       bool         `json:"yielded"`
	YieldedModels []string     `json:"yielded_models,omitempty"`
	Loaded        []LoadedJSON `json:"loaded"`
	// Cards are the cards apart, where a driver reads them.
	Cards []CardJSON `json:"cards,omitempty"`
	// Accounting is the server generation the estimates follow;
	// AccountingInferredFrom names the model whose load showed it when the
	// server's version says nothing (a build from source).
	Accounting             string `json:"accounting,omitempty"`
	AccountingInferredFrom string `json:"accounting_inferred_from,omitempty"`
}

// CardJSON is one card in StatusJSON.
type CardJSON struct {
	Name        string `json:"name"`
	Source      string `json:"source"`
	SourceLabel string `json:"source_label"`
	ID          string `json:"id,omitempty"`
	TotalBytes  uint64 `json:"total_bytes"`
	UsedBytes   uint64 `json:"used_bytes"`
	FreeBytes   uint64 `json:"free_bytes"`
	OtherBytes  uint64 `json:"other_bytes"`
	Integrated  bool   `json:"integrated,omitempty"`
}

// LoadedJSON is one loaded model in StatusJSON.
type LoadedJSON struct {
	Name      string    `json:"name"`
	SizeBytes uint64    `json:"size_bytes"`
	LastUsed  time.Time `json:"last_used"`
	// ContextLength is the context it is loaded at; CPUPercent how much of
	// it Ollama put on the CPU (0 when all is on the GPU).
	ContextLength int `json:"context_length"`
	CPUPercent    int `json:"cpu_percent"`
}

// statusOf is what `status` says about a snapshot taken at now.
func statusOf(s manager.Snapshot, ollamaURL string, now time.Time) StatusJSON {
	out := StatusJSON{
		BudgetBytes: s.Budget, UsedBytes: s.Used, TotalBytes: s.VRAM.Total, OtherBytes: s.Others, FreeBytes: s.Free,
		Source: s.VRAM.Source, SourceNote: s.VRAM.Note, Ollama: ollamaURL, OllamaUp: s.OllamaUp,
		OllamaVersion: s.Version, Loading: s.Loading, Yielded: s.Yielded, YieldedModels: s.YieldedModels,
		Loaded: []LoadedJSON{}, Accounting: s.Accounting, AccountingInferredFrom: s.AccountingFrom,
	}
	for _, c := range s.Cards {
		out.Cards = append(out.Cards, CardJSON{Name: c.Name, Source: c.Source, SourceLabel: card.SourceLabel(c.Source),
			ID: c.ID, TotalBytes: c.Total, UsedBytes: c.Used, FreeBytes: c.Free, OtherBytes: c.Others, Integrated: c.Integrated})
	}
	if s.Loading != "" && !s.LoadingSince.IsZero() {
		out.LoadingSeconds = max(int(now.Sub(s.LoadingSince).Round(time.Second)/time.Second), 0)
	}
	for _, m := range s.LoadedModels() {
		out.Loaded = append(out.Loaded, LoadedJSON{Name: m.Name, SizeBytes: m.SizeBytes, LastUsed: m.LastUsed,
			ContextLength: m.LoadedCtx, CPUPercent: m.CPUPercent})
	}
	return out
}

func cmdStatus(ctx context.Context, env *Env, k keeper.Keeper) error {
	s := k.Snapshot()
	now := time.Now()
	out := statusOf(s, env.OllamaURL.String(), now)
	if env.Flags.JSON {
		return env.printJSON(out)
	}
	fmt.Fprintf(env.Stdout, "VRAM %s / %s budget (card %s, %s", config.FormatBytes(s.Used), config.FormatBytes(s.Budget),
		config.FormatBytes(s.VRAM.Total), card.SourceLabel(s.VRAM.Source))
	if s.VRAM.Note != "" {
		fmt.Fprintf(env.Stdout, ": %s", s.VRAM.Note)
	}
	fmt.Fprintln(env.Stdout, ")")
	if s.Others > 0 {
		fmt.Fprintf(env.Stdout, "other programs: %s, free: %s\n", config.FormatBytes(s.Others), config.FormatBytes(s.Free))
	}
	if len(s.Cards) > 1 {
		for _, c := range s.Cards {
			fmt.Fprintf(env.Stdout, "  %s\n", describe.Card(c))
		}
	}
	up := "up"
	if s.Version != "" {
		up += ", version " + s.Version
	}
	if a := describe.Accounting(s); a != "" {
		up += " (" + a + ")"
	}
	if !s.OllamaUp {
		up = "unreachable: " + s.RuntimeErr
	}
	fmt.Fprintf(env.Stdout, "ollama %s: %s\n", env.OllamaURL, up)
	if l := describe.Loading(s, now); l != "" {
		fmt.Fprintln(env.Stdout, l)
	}
	if y := describe.Yielded(s); y != "" {
		fmt.Fprintf(env.Stdout, "%s; nothing loads until vramkeeper restore\n", y)
	}
	loaded := s.LoadedModels()
	if len(loaded) == 0 {
		fmt.Fprintln(env.Stdout, "no models loaded")
	}
	for _, m := range loaded {
		line := fmt.Sprintf("  %-32s %10s  context %-6d last used %s", m.Name, config.FormatBytes(m.SizeBytes), m.LoadedCtx, ago(m.LastUsed))
		if cpu := describe.CPU(m); cpu != "" {
			line += "  " + cpu
		}
		fmt.Fprintln(env.Stdout, line)
	}
	return nil
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never (loaded by another client)"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func cmdBest(ctx context.Context, env *Env, k keeper.Keeper, task, role string) error {
	stop := env.progress(ctx, "choosing and loading a model for "+task)
	c, err := k.BestModelForTask(ctx, task, role)
	stop()
	if err != nil {
		return err
	}
	if c.Evicted == nil {
		c.Evicted = []string{}
	}
	if env.Flags.JSON {
		return env.printJSON(c)
	}
	fmt.Fprintln(env.Stdout, c.Model)
	fmt.Fprintf(env.Stderr, "reason: %s\n", c.Reason)
	if len(c.Evicted) > 0 {
		fmt.Fprintf(env.Stderr, "evicted: %v\n", c.Evicted)
	}
	return nil
}

func cmdLoad(ctx context.Context, env *Env, k keeper.Keeper, name string) error {
	stop := env.progress(ctx, "loading "+name)
	r, err := k.LoadAt(ctx, name, env.Flags.Ctx, "loaded from the command line")
	stop()
	if err != nil {
		return err
	}
	at := ""
	if r.NumCtx > 0 {
		at = fmt.Sprintf(" at %d tokens", r.NumCtx)
	}
	switch {
	case r.Already:
		fmt.Fprintf(env.Stdout, "%s was already loaded%s\n", r.Model, at)
	case len(r.Evicted) > 0:
		fmt.Fprintf(env.Stdout, "loaded %s%s (evicted %s)\n", r.Model, at, strings.Join(r.Evicted, ", "))
	default:
		fmt.Fprintf(env.Stdout, "loaded %s%s\n", r.Model, at)
	}
	return nil
}

func cmdYield(ctx context.Context, env *Env, k keeper.Keeper) error {
	stop := env.progress(ctx, "giving the GPU back")
	names, err := k.Yield(ctx)
	stop()
	if err != nil {
		return err
	}
	if len(names) == 0 {
		fmt.Fprintln(env.Stdout, "gave the GPU back (no model was loaded)")
	} else {
		fmt.Fprintf(env.Stdout, "gave the GPU back: unloaded %s\n", strings.Join(names, ", "))
	}
	if inProcess(k) {
		// The state folder remembers the yield: later commands refuse to
		// load until restore, and a tray or serve started meanwhile too.
		fmt.Fprintln(env.Stderr, "vramkeeper: no VRAM Keeper is running; the state folder remembers these models: "+
			"vramkeeper restore puts them back, and until then nothing loads")
	}
	return nil
}

func cmdRestore(ctx context.Context, env *Env, k keeper.Keeper) error {
	stop := env.progress(ctx, "putting the models back")
	names, err := k.Restore(ctx)
	stop()
	if err != nil {
		return err
	}
	if len(names) == 0 {
		fmt.Fprintln(env.Stdout, "nothing to restore")
		return nil
	}
	fmt.Fprintf(env.Stdout, "restored %s\n", strings.Join(names, ", "))
	return nil
}

// cmdHistory prints the recent history, newest last, and with --plot
// writes the last hour's chart.
func cmdHistory(ctx context.Context, env *Env, k keeper.Keeper) error {
	events := k.History()
	if env.Flags.Plot != "" {
		w, err := k.Timeline(ctx, time.Now().Add(-timeline.DefaultSpan))
		if err != nil {
			return fmt.Errorf("reading the timeline for %s: %w", env.Flags.Plot, err)
		}
		if err := plot.WriteFile(env.Flags.Plot, w, plot.Options{Title: "VRAM over the last hour"}); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "vramkeeper: wrote the last hour's chart to %s (%d samples, %d marks)\n", env.Flags.Plot, len(w.Samples), len(w.Marks))
		if inProcess(k) {
			fmt.Fprintln(env.Stderr, "vramkeeper: no VRAM Keeper is running, so the chart holds only what this command saw; the tray and vramkeeper serve keep the last hour")
		}
	}
	if env.Flags.JSON {
		if events == nil {
			events = []manager.Event{}
		}
		return env.printJSON(events)
	}
	if len(events) == 0 {
		fmt.Fprintln(env.Stdout, "no history yet")
	}
	for _, e := range events {
		fmt.Fprintln(env.Stdout, describe.Event(e))
	}
	return nil
}

// progress prints a line every few seconds while a slow call runs, so a
// multi-gigabyte load does not look like a hang.
func (e *Env) progress(ctx context.Context, what string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(3 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				fmt.Fprintf(e.Stderr, "... %s (%s)\n", what, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(done); <-finished }
}
