package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
)

// server is a private Ollama for the bench: ollamatest's recipe (same
// binary, loopback port, private models dir and home, OLLAMA_NUM_PARALLEL=1)
// without a testing.TB, since this is a command.
type server struct {
	URL     *url.URL
	Client  *api.Client
	Version string
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
}

func startOllama(ctx context.Context) (*server, error) {
	bin, err := ollamatest.Binary()
	if err != nil {
		return nil, fmt.Errorf("no ollama binary (scripts/ollama-build.sh builds it): %w", err)
	}
	dir, err := os.MkdirTemp("", "vk-bench-ollama-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("free port: %w", err)
	}
	host := l.Addr().String()
	l.Close()
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OLLAMA_") || k == "HOME" {
			continue // the developer's Ollama settings must not leak in
		}
		env = append(env, kv)
	}
	for _, d := range []string{"models", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("ollama dirs: %w", err)
		}
	}
	env = append(env, "OLLAMA_HOST="+host, "OLLAMA_MODELS="+filepath.Join(dir, "models"),
		"HOME="+filepath.Join(dir, "home"), "OLLAMA_NUM_PARALLEL=1", "OLLAMA_NOPRUNE=1", "OLLAMA_NO_CLOUD=1")
	logf, err := os.Create(filepath.Join(dir, "ollama.log"))
	if err != nil {
		return nil, fmt.Errorf("ollama log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve")
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, dir, logf, logf
	// Own process group: stopping it also stops the runners it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", bin, err)
	}
	s := &server{URL: &url.URL{Scheme: "http", Host: host}, dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	s.Client = api.NewClient(s.URL, &http.Client{})
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := s.Client.Version(c)
		cancel()
		if err == nil {
			s.Version = v
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("ollama exited at start; log in %s", dir)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			return nil, errors.Join(fmt.Errorf("ollama did not answer in 90 s"), err)
		}
	}
}

func (s *server) stop() {
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // runners left behind, if any
	<-s.exited
	_ = os.RemoveAll(s.dir)
}

// create pushes gguf through the real API (blob, then create), as
// `ollama create` does.
func (s *server) create(ctx context.Context, name string, gguf []byte) error {
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(gguf))
	if err := s.Client.CreateBlob(ctx, digest, bytes.NewReader(gguf)); err != nil {
		return fmt.Errorf("blob for %s: %w", name, err)
	}
	var last string
	err := s.Client.Create(ctx, &api.CreateRequest{Model: name, Files: map[string]string{"model.gguf": digest}},
		func(p api.ProgressResponse) error { last = p.Status; return nil })
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if last != "success" {
		return fmt.Errorf("create %s: last status %q", name, last)
	}
	return nil
}

// waitGone polls /api/ps until nothing is loaded.
func (s *server) waitGone(ctx context.Context) error {
	for {
		ps, err := s.Client.ListRunning(ctx)
		if err != nil {
			return fmt.Errorf("/api/ps: %w", err)
		}
		if len(ps.Models) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
