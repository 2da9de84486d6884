package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
)

// server is a private Ollama for the bench: ollamatest's server (same
// binary, loopback port, private models dir and home) without a test.
type server struct {
	*ollamatest.Server
	Version string
}

func startOllama(ctx context.Context) (*server, error) {
	bin, err := ollamatest.Binary()
	if err != nil {
		return nil, fmt.Errorf("no ollama binary (scripts/ollama-build.sh builds it): %w", err)
	}
	return launchOllama(ctx, bin)
}

// launchOllama starts bin as a private server.
func launchOllama(ctx context.Context, bin string) (*server, error) {
	dir, err := os.MkdirTemp("", "vk-bench-ollama-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	s, err := ollamatest.Launch(bin, dir)
	if err == nil {
		srv := &server{Server: s}
		if srv.Version, err = s.Client.Version(ctx); err == nil {
			return srv, nil
		}
	}
	if s != nil {
		err = fmt.Errorf("%w; log:\n%s", err, s.LogTail())
		s.Stop()
	}
	os.RemoveAll(dir)
	return nil, err
}

func (s *server) stop() {
	s.Stop()
	_ = os.RemoveAll(s.Dir)
}

// create pushes gguf through the real API (blob, then create), as
// `ollama create` does.
func (s *server) create(ctx context.Context, name string, gguf []byte) error {
	return s.CreateModelContext(ctx, name, gguf)
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
