package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ollamaProc is an `ollama serve` the app started from the banner. The app
// stops it on quit, and only it: a server the user started is theirs.
type ollamaProc struct {
	bin  string
	host string // OLLAMA_HOST for the child; "" leaves the default
	log  *slog.Logger

	cmd  *exec.Cmd
	done chan struct{} // closed when the child has exited and been waited
}

func newOllamaProc(bin, ollamaURL string, log *slog.Logger) *ollamaProc {
	if bin == "" {
		bin, _ = exec.LookPath("ollama")
	}
	if log == nil {
		log = slog.Default()
	}
	return &ollamaProc{bin: bin, host: hostOf(ollamaURL), log: log}
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

func (p *ollamaProc) available() bool { return p.bin != "" }
func (p *ollamaProc) started() bool   { return p.cmd != nil }

// start launches `ollama serve` in its own process group, so a Ctrl-C in
// the app's terminal does not reach it before the app can stop it in order.
func (p *ollamaProc) start() error {
	if p.bin == "" {
		return errors.New("no ollama binary on PATH")
	}
	if p.cmd != nil {
		return nil
	}
	cmd := exec.Command(p.bin, "serve")
	cmd.Env = os.Environ()
	if p.host != "" {
		cmd.Env = append(cmd.Env, "OLLAMA_HOST="+p.host)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting ollama serve: %w", err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	// This goroutine's owner is p: stop waits for it to finish.
	go func() {
		err := cmd.Wait()
		p.log.Info("ollama serve exited", "err", err)
		close(p.done)
	}()
	p.log.Info("started ollama serve", "pid", cmd.Process.Pid, "bin", p.bin)
	return nil
}

// stop ends the server we started: SIGTERM so it can stop its runners,
// then SIGKILL to the group after grace.
func (p *ollamaProc) stop(grace time.Duration) {
	if p.cmd == nil {
		return
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
	p.cmd = nil
}

// OllamaServer is the `ollama serve` the tray starts when the window's
// banner asks (through the API): it belongs to the tray process, which
// lives until Quit, not to the window, whose process ends when it closes.
// Safe for concurrent use.
type OllamaServer struct {
	mu sync.Mutex
	p  *ollamaProc
}

// NewOllamaServer finds bin ("" looks up `ollama` on PATH) and serves on
// ollamaURL's host when started.
func NewOllamaServer(bin, ollamaURL string, log *slog.Logger) *OllamaServer {
	return &OllamaServer{p: newOllamaProc(bin, ollamaURL, log)}
}

// Start starts the server unless it runs already.
func (s *OllamaServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.start()
}

// Stop ends the server if Start started it.
func (s *OllamaServer) Stop(grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.stop(grace)
}
