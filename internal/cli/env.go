// Package cli parses the command line, builds the manager from flags and the
// config file, and runs the subcommands. main.go only hands it the desktop
// app to start when no subcommand is given.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/instance"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/gpu"
	"github.com/vramkeeper/vramkeeper/manager/ollama"
	"github.com/vramkeeper/vramkeeper/manager/score"
)

// Flags are the settings every subcommand accepts; each overrides the config
// file when given.
type Flags struct {
	Ollama    string
	Budget    string
	VRAM      string
	MaxLoaded int
	Ctx       int
	Config    string
	StateDir  string
	Listen    string
	JSON      bool
	Verbose   bool
	Hidden    bool
	// Plot is the chart file `history --plot` writes (.svg or .png).
	Plot string
	// Insecure lets `pull` use a registry over plain HTTP.
	Insecure bool
}

func (f *Flags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.Ollama, "ollama", "", "Ollama URL (default: OLLAMA_HOST as the official client reads it, else http://127.0.0.1:11434)")
	fs.StringVar(&f.Budget, "budget", "", "VRAM budget for our models: a size (7GiB, 7000MB) or a share of the card (80%); default: card size - 1 GiB")
	fs.StringVar(&f.VRAM, "vram", "", "card size to assume when NVML is unavailable (default 8GiB)")
	fs.IntVar(&f.MaxLoaded, "max-loaded", 0, "models loaded at once (default 2)")
	fs.IntVar(&f.Ctx, "ctx", 0, "context length models are loaded with (default 4096); with load: the one to load this model at")
	fs.StringVar(&f.Config, "config", "", "config file (default: <user config dir>/vramkeeper/config.toml)")
	fs.StringVar(&f.StateDir, "state-dir", "", "state directory (default: $XDG_STATE_HOME/vramkeeper)")
	fs.StringVar(&f.Listen, "listen", "", "address of the local API (default 127.0.0.1:11435)")
	fs.BoolVar(&f.JSON, "json", false, "print JSON")
	fs.BoolVar(&f.Verbose, "v", false, "log what the manager does")
	fs.BoolVar(&f.Hidden, "hidden", false, "desktop app: start in the tray without opening the window (as on login)")
	fs.StringVar(&f.Plot, "plot", "", "history: also write the last hour's chart to this file (.svg or .png)")
	fs.BoolVar(&f.Insecure, "insecure", false, "pull: allow a registry over plain HTTP (a local one)")
}

// parse splits args into flags and positional arguments, accepting flags
// anywhere ("models --json" and "--json models" alike).
func parse(args []string, stderr io.Writer) (Flags, []string, error) {
	var f Flags
	fs := flag.NewFlagSet("vramkeeper", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stderr, fs) }
	f.register(fs)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return f, nil, err
		}
		if fs.NArg() == 0 {
			return f, pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `VRAM Keeper keeps Ollama models inside a VRAM budget.

Usage:
  vramkeeper                      start the desktop app (tray icon and window)
  vramkeeper window               open the window of the running desktop app
  vramkeeper serve                run headless: the manager and the local API
  vramkeeper models [--json]      list installed models with estimates and priorities
  vramkeeper best TASK [ROLE]     choose the best model for a task, load it, print it
  vramkeeper load MODEL [--ctx N] load a model (evicting others as needed), at N tokens
  vramkeeper unload MODEL         unload a model
  vramkeeper status [--json]      VRAM use, budget, loaded models, a load in progress
  vramkeeper pull [--insecure] MODEL
                                  download a model through Ollama, with its progress
  vramkeeper yield                give the GPU back: unload every model until restore
  vramkeeper restore              put back the models yield unloaded
  vramkeeper history [--json] [--plot FILE]
                                  recent loads and evictions; --plot writes the last
                                  hour's chart as .svg or .png
  vramkeeper mcp                  serve the MCP tools over stdin/stdout (for agents:
                                  claude mcp add vramkeeper -- vramkeeper mcp)
  vramkeeper version              print this build's version

Tasks: code_generation, code_review, chat, reasoning, summarization, tool_use,
vision, embedding (and any added in the config file).
Roles: architect, coder, reviewer, researcher, assistant.

Exit codes: 0 ok, 1 other error, 2 usage, 3 Ollama unreachable, 4 unknown
model, 5 unknown task or role, 6 the model can never fit the budget, 7 a load
failed (timed out, or kept off the CPU by gpu_only), 8 another VRAM Keeper
manages this state folder, 9 the running instance refused the command, 10 the
GPU was given back (run vramkeeper restore).

Flags:
`)
	fs.PrintDefaults()
}

// Env is everything a command needs, built once from flags and config.
type Env struct {
	Flags      Flags
	Config     config.Config
	ConfigPath string
	StateDir   string
	OllamaURL  *url.URL
	Runtime    *ollama.Client
	// GPU and Manager are built by Own, only in the process that manages
	// this state folder: the window and a CLI that uses a running
	// instance open neither NVML nor the state files.
	GPU     *gpu.Probe
	Manager *manager.Manager
	lock    *instance.Lock
	Log     *slog.Logger
	// StartOllama, when set before ServeAPI, serves POST
	// /keeper/v1/ollama/start (the desktop tray sets it).
	StartOllama func(ctx context.Context) (wire.StartOllamaResponse, error)
	// OpenWindow, when set before ServeAPI, serves POST /keeper/v1/window
	// (the desktop tray sets it).
	OpenWindow func() error
	// OllamaBin and NoTray go into what GET /keeper/v1/instance says (the
	// desktop tray sets them): the `ollama` it starts, and whether the
	// desktop shows no tray icon.
	OllamaBin string
	NoTray    func() bool
	// mode is what Own was called for ("tray", "serve", "cli", "mcp").
	mode string
	// Stdin is what `vramkeeper mcp` reads its client from.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Close releases what Setup and Own opened.
func (e *Env) Close() {
	if e.GPU != nil {
		e.GPU.Close()
	}
	if e.lock != nil {
		if err := e.lock.Release(); err != nil {
			e.Log.Warn("state folder not released", "dir", e.StateDir, "err", err)
		}
		e.lock = nil
	}
}

// Setup reads the config file (a broken one is reported and its defaults
// kept) and applies the flags. It starts nothing and opens nothing: Own
// builds the manager.
func Setup(f Flags, quiet bool, stdout, stderr io.Writer) (*Env, error) {
	// One-shot commands print their outcome; warnings such as the NVML
	// fallback show in their output (status: source) instead of the log.
	level := slog.LevelWarn
	if quiet {
		level = slog.LevelError
	}
	if f.Verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	env := &Env{Flags: f, Log: log, Stdin: os.Stdin, Stdout: stdout, Stderr: stderr}

	env.ConfigPath = f.Config
	if env.ConfigPath == "" {
		p, err := config.DefaultPath()
		if err != nil {
			return nil, err
		}
		env.ConfigPath = p
	}
	cfg, err := config.Load(env.ConfigPath)
	if err != nil {
		// The app keeps running on the defaults; the user learns where the
		// file is wrong.
		fmt.Fprintf(stderr, "vramkeeper: config ignored where invalid: %v\n", err)
	}
	if err := applyFlags(&cfg, f); err != nil {
		return nil, err
	}
	env.Config = cfg

	env.StateDir = f.StateDir
	if env.StateDir == "" {
		if env.StateDir, err = config.DefaultStateDir(); err != nil {
			return nil, err
		}
	}
	// Absolute: an instance names its state folder, and a client compares
	// it with its own, from whatever folder each was started in.
	if env.StateDir, err = filepath.Abs(env.StateDir); err != nil {
		return nil, fmt.Errorf("state folder: %w", err)
	}

	if cfg.OllamaURL != "" {
		u, err := parseOllamaURL(cfg.OllamaURL)
		if err != nil {
			return nil, err
		}
		env.Runtime = ollama.New(u, nil)
	} else {
		env.Runtime = ollama.FromEnv()
	}
	env.OllamaURL = env.Runtime.URL()
	return env, nil
}

// Own makes this process the manager of the state folder (and so of its
// Ollama): it takes the folder's lock, then builds the GPU probe and the
// manager. mode is "tray", "serve", "cli" or "mcp". Another process holding the
// folder gives an *instance.HeldError naming it. Close releases the lock.
func (e *Env) Own(mode string) error {
	me := instance.Info{PID: os.Getpid(), Mode: mode, Ollama: e.OllamaURL.Redacted(), Started: time.Now()}
	if mode == "tray" || mode == "serve" { // one-shot commands and mcp serve no API
		me.API = e.Config.Listen
	}
	l, err := instance.Acquire(e.StateDir, me)
	if err != nil {
		return err
	}
	if l.Degraded != nil {
		// The manager's state warns once that the folder cannot be
		// written; this says only where the lock went.
		e.Log.Info("state folder not writable: locked and recorded beside the temporary files instead", "dir", e.StateDir, "err", l.Degraded)
	}
	e.lock, e.mode = l, mode
	opt, err := ownOptions(mode, e.Config)
	if err != nil {
		return err
	}
	e.GPU = gpu.New(e.Config.VRAMBytes(), e.Log)
	opt.Runtime, opt.GPU, opt.StateDir, opt.Logger = e.Runtime, e.GPU, e.StateDir, e.Log
	if !wire.IsLoopback(e.OllamaURL.Host) {
		// The model files live on the server's machine: nothing to warm here.
		opt.Settings.NoPrefetch = true
	}
	if e.Manager, err = manager.New(opt); err != nil {
		return err
	}
	return nil
}

// ownOptions are the options of the manager a process of this mode runs.
// Only the long-running ones (the tray, serve) warm the card up: a
// one-shot command that runs a manager in-process loads what it is asked
// to, and nothing else.
func ownOptions(mode string, cfg config.Config) (manager.Options, error) {
	opt, err := Options(cfg)
	if err != nil {
		return opt, err
	}
	if mode == "tray" || mode == "serve" {
		opt.WarmStart = cfg.WarmStart
	}
	return opt, nil
}

// Options turns a config into manager options (without runtime and GPU,
// and without the warm start, which only long-running processes do).
func Options(cfg config.Config) (manager.Options, error) {
	var opt manager.Options
	set := &opt.Settings
	if cfg.Budget != "" {
		b, err := config.ParseSize(cfg.Budget)
		if err != nil {
			return opt, fmt.Errorf("budget: %w", err)
		}
		set.Budget = b
	}
	if _, err := evict.ByName(cfg.Policy); err != nil {
		return opt, err
	}
	set.Policy = cfg.Policy
	set.MaxLoaded, set.NumCtx = cfg.ModelLimit(), cfg.ContextLength
	set.NoPrefetch = !cfg.Prefetch
	if cfg.PrefetchMargin != "" {
		m, err := config.ParseSize(cfg.PrefetchMargin)
		if err != nil {
			return opt, fmt.Errorf("prefetch_margin: %w", err)
		}
		set.PrefetchMargin = m.Bytes
	}
	set.Pinned = cfg.Pinned
	if cfg.RefreshSeconds > 0 {
		opt.RefreshEvery = time.Duration(cfg.RefreshSeconds) * time.Second
	}
	set.BusyGrace = time.Duration(cfg.BusyGraceSeconds) * time.Second
	timeout, err := cfg.LoadTimeoutDuration()
	if err != nil {
		return opt, fmt.Errorf("load_timeout: %w", err)
	}
	set.LoadTimeout, set.GPUOnly = timeout, cfg.GPUOnly
	if set.Contexts, err = cfg.Contexts(); err != nil {
		return opt, err
	}
	set.Tables = score.Defaults().Merge(cfg.Tasks, cfg.Roles)
	return opt, nil
}

func applyFlags(cfg *config.Config, f Flags) error {
	if f.Ollama != "" {
		cfg.OllamaURL = f.Ollama
	}
	if f.Budget != "" {
		if _, err := config.ParseSize(f.Budget); err != nil {
			return usageError{fmt.Errorf("--budget: %w", err)}
		}
		cfg.Budget = f.Budget
	}
	if f.VRAM != "" {
		s, err := config.ParseSize(f.VRAM)
		if err != nil || s.Percent > 0 {
			return usageError{fmt.Errorf("--vram %q: want a size such as 8GiB", f.VRAM)}
		}
		cfg.VRAM = f.VRAM
	}
	if f.MaxLoaded < 0 || f.Ctx < 0 {
		return usageError{errors.New("--max-loaded and --ctx must be positive")}
	}
	if f.MaxLoaded > 0 {
		cfg.MaxLoaded = f.MaxLoaded
	}
	if f.Ctx > 0 {
		cfg.ContextLength = f.Ctx
	}
	if f.Listen != "" {
		cfg.Listen = f.Listen
	}
	return nil
}

// parseOllamaURL accepts what OLLAMA_HOST accepts: "host:port", a bare
// host, or a full URL.
func parseOllamaURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, usageError{fmt.Errorf("--ollama %q: not a URL", s)}
	}
	if u.Port() == "" {
		u.Host += ":11434"
	}
	return u, nil
}

// Start runs the manager until ctx ends; the returned function stops it and
// waits.
func (e *Env) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.Manager.Run(ctx); err != nil {
			e.Log.Error("manager stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}

type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }
