package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// OllamaServer is the `ollama serve` the tray starts when the window's
// banner asks (through the API). It belongs to the tray process, which
// lives until Quit, and it is watched: when it exits, it is started again
// after a backoff that doubles with each quick exit, and given up after
// too many. A server the user started is never touched: Start does
// nothing when one answers, and a restart is skipped when one answers by
// then. Safe for concurrent use; Stop ends its goroutine.
type OllamaServer struct {
	opt OllamaServerOptions

	startMu sync.Mutex // one Start at a time: two must not start two servers

	mu      sync.Mutex
	st      OllamaStatus
	cancel  context.CancelFunc // ends the watch; nil when not watching
	done    chan struct{}      // closed when the watch has ended
	changed chan struct{}      // a buffer of one: the status changed
}

// OllamaServerOptions configure an OllamaServer; zero values take the
// defaults.
type OllamaServerOptions struct {
	// Bin is the `ollama` binary; "" looks it up on PATH.
	Bin string
	// URL is where the manager reaches Ollama; the child serves there.
	URL string
	// Env is added to the child's environment.
	Env []string
	// Backoff is the first wait before a restart (default 1 s); it doubles
	// with each exit within StableAfter of the start, up to MaxBackoff
	// (default 1 minute).
	Backoff, MaxBackoff time.Duration
	// StableAfter: a server that ran this long (default 1 minute) had no
	// quick exit, and the backoff starts over.
	StableAfter time.Duration
	// MaxQuickExits: after this many quick exits in a row (default 6) the
	// server is not started again until Start is called.
	MaxQuickExits int
	// ReadyWait bounds how long Start waits for the server to answer
	// (default 20 s).
	ReadyWait time.Duration
	Log       *slog.Logger
}

// OllamaStatus is what the tray and the API say about the server.
type OllamaStatus struct {
	// Ours: VRAM Keeper started it and watches it.
	Ours bool `json:"ours"`
	// Running: our child process runs now.
	Running bool `json:"running"`
	PID     int  `json:"pid,omitempty"`
	// Restarts counts starts after an exit.
	Restarts int `json:"restarts"`
	// LastExit says how the last child ended ("exit status 1").
	LastExit string `json:"last_exit,omitempty"`
	// NextStart is when a restart is due; zero when none is.
	NextStart time.Time `json:"next_start,omitzero"`
	// GaveUp: it exited quickly too often; it is not started again.
	GaveUp bool `json:"gave_up,omitempty"`
	// External: a server we did not start answers at the URL.
	External bool `json:"external,omitempty"`
}

// NewOllamaServer prepares a server; nothing starts before Start.
func NewOllamaServer(opt OllamaServerOptions) *OllamaServer {
	if opt.Bin == "" {
		opt.Bin = findOllama()
	}
	if opt.Backoff <= 0 {
		opt.Backoff = time.Second
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = time.Minute
	}
	if opt.StableAfter <= 0 {
		opt.StableAfter = time.Minute
	}
	if opt.MaxQuickExits <= 0 {
		opt.MaxQuickExits = 6
	}
	if opt.ReadyWait <= 0 {
		opt.ReadyWait = 20 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &OllamaServer{opt: opt, changed: make(chan struct{}, 1)}
}

// Bin is the `ollama` Start runs; "" when none is installed.
func (s *OllamaServer) Bin() string { return s.opt.Bin }

// Status is the server's state now.
func (s *OllamaServer) Status() OllamaStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// Changed receives a value after each status change (coalesced).
func (s *OllamaServer) Changed() <-chan struct{} { return s.changed }

func (s *OllamaServer) update(f func(*OllamaStatus)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Start starts `ollama serve` and watches it, unless a server answers at
// the URL already (then it reports that one as External and touches
// nothing) or ours runs. It waits until the server answers, exits, or
// ReadyWait passes, and returns the status then: started means answering.
func (s *OllamaServer) Start(ctx context.Context) (OllamaStatus, error) {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.mu.Lock()
	watching := s.cancel != nil
	s.mu.Unlock()
	if !watching {
		if s.answers(ctx) {
			s.update(func(st *OllamaStatus) { st.External = true })
			return s.Status(), nil
		}
		if s.opt.Bin == "" {
			return s.Status(), errors.New("no ollama binary on PATH: install Ollama or start it yourself")
		}
		if err := s.watch(); err != nil {
			return s.Status(), err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.opt.ReadyWait)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		st := s.Status()
		if st.Running && s.answers(ctx) {
			return st, nil
		}
		if st.GaveUp {
			return st, fmt.Errorf("ollama serve keeps exiting (%s); see the log", st.LastExit)
		}
		select {
		case <-ctx.Done():
			if st.LastExit != "" {
				return st, fmt.Errorf("ollama serve does not answer at %s (it exited: %s)", s.opt.URL, st.LastExit)
			}
			return st, fmt.Errorf("ollama serve does not answer at %s after %s", s.opt.URL, s.opt.ReadyWait)
		case <-tick.C:
		}
	}
}

// watch starts the first child and the goroutine that restarts it.
func (s *OllamaServer) watch() error {
	p, err := s.spawn()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.mu.Lock()
	s.cancel, s.done = cancel, done
	s.mu.Unlock()
	s.update(func(st *OllamaStatus) {
		*st = OllamaStatus{Ours: true, Running: true, PID: p.cmd.Process.Pid}
	})
	go func() {
		defer close(done)
		s.loop(ctx, p)
	}()
	return nil
}

// spawn starts `ollama serve` in its own process group, so a Ctrl-C in
// the app's terminal does not reach it before the app stops it in order.
func (s *OllamaServer) spawn() (*serveProc, error) {
	cmd := exec.Command(s.opt.Bin, "serve")
	cmd.Env = append(os.Environ(), s.opt.Env...)
	if h := hostOf(s.opt.URL); h != "" {
		cmd.Env = append(cmd.Env, "OLLAMA_HOST="+h)
	}
	p, err := startServe(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting %s serve: %w", s.opt.Bin, err)
	}
	s.opt.Log.Info("started ollama serve", "pid", cmd.Process.Pid, "bin", s.opt.Bin)
	return p, nil
}

// loop waits for each child to exit and starts the next, until ctx ends
// (Stop) or it gives up.
func (s *OllamaServer) loop(ctx context.Context, p *serveProc) {
	quick := 0
	for {
		began := time.Now()
		exited := make(chan error, 1)
		go func() { exited <- p.wait() }() // ends when the child does; stop makes sure it does
		var err error
		select {
		case <-ctx.Done():
			p.stop(exited, 10*time.Second, s.opt.Log)
			s.update(func(st *OllamaStatus) { st.Running, st.PID = false, 0 })
			return
		case err = <-exited:
		}
		why := "exited"
		if err != nil {
			why = err.Error()
		}
		if time.Since(began) < s.opt.StableAfter {
			quick++
		} else {
			quick = 1
		}
		if quick >= s.opt.MaxQuickExits {
			s.opt.Log.Error("ollama serve keeps exiting; not starting it again", "exits", quick, "last", why)
			s.update(func(st *OllamaStatus) {
				st.Running, st.PID, st.LastExit, st.GaveUp, st.NextStart = false, 0, why, true, time.Time{}
			})
			s.forget()
			return
		}
		wait := min(s.opt.Backoff<<(quick-1), s.opt.MaxBackoff)
		s.opt.Log.Warn("ollama serve exited; starting it again", "err", why, "in", wait)
		s.update(func(st *OllamaStatus) {
			st.Running, st.PID, st.LastExit, st.NextStart = false, 0, why, time.Now().Add(wait)
		})
		select {
		case <-ctx.Done():
			s.update(func(st *OllamaStatus) { st.NextStart = time.Time{} })
			return
		case <-time.After(wait):
		}
		if s.answers(ctx) {
			// Someone started their own meanwhile: it is theirs.
			s.opt.Log.Info("another ollama serve answers now; leaving it alone", "url", s.opt.URL)
			s.update(func(st *OllamaStatus) {
				*st = OllamaStatus{External: true, Restarts: st.Restarts, LastExit: st.LastExit}
			})
			s.forget()
			return
		}
		next, err := s.spawn()
		if err != nil {
			s.opt.Log.Error("ollama serve not restarted", "err", err)
			s.update(func(st *OllamaStatus) { st.GaveUp, st.LastExit, st.NextStart = true, err.Error(), time.Time{} })
			s.forget()
			return
		}
		p = next
		s.update(func(st *OllamaStatus) {
			st.Running, st.PID, st.NextStart = true, p.cmd.Process.Pid, time.Time{}
			st.Restarts++
		})
	}
}

// forget marks the watch as ended from inside it, so a later Start
// starts afresh.
func (s *OllamaServer) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
}

// Stop ends the server if Start started it, and its watch (SIGTERM, or
// Ctrl-Break on Windows; killed after 10 s). A server the user started is
// not touched.
func (s *OllamaServer) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if done != nil {
		<-done
	}
}

// probeClient asks whether a server answers; no kept-alive connections,
// so no transport goroutines outlive a probe.
var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// answers reports whether an Ollama answers at the URL.
func (s *OllamaServer) answers(ctx context.Context) bool {
	if s.opt.URL == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.opt.URL, "/")+"/api/version", nil)
	if err != nil {
		return false
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// hostOf turns the manager's URL into OLLAMA_HOST's host:port form.
func hostOf(raw string) string {
	if raw == "" {
		return ""
	}
	if !strings.Contains(raw, "://") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
