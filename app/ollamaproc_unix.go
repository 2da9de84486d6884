//go:build !windows

package app

import (
	"log/slog"
	"os/exec"
	"syscall"
	"time"
)

// serveProc is a running `ollama serve` in its own process group.
type serveProc struct{ cmd *exec.Cmd }

func startServe(cmd *exec.Cmd) (*serveProc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &serveProc{cmd}, nil
}

func (p *serveProc) wait() error { return p.cmd.Wait() }

// stop ends the server: SIGTERM so it can stop its runners, then SIGKILL
// to its group after grace.
func (p *serveProc) stop(exited <-chan error, grace time.Duration, log *slog.Logger) {
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		log.Warn("ollama serve ignored SIGTERM; killing it", "pid", pid)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
}

// findOllama is the `ollama` on PATH, "" when there is none.
func findOllama() string {
	bin, _ := exec.LookPath("ollama")
	return bin
}
