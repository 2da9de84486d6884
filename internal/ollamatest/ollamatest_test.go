package ollamatest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
)

// tinyLlama is the smallest llama ggufgen writes that Ollama loads: a few MB.
var tinyLlama = ggufgen.Spec{
	Arch: "llama", Layers: 2, Embd: 64, Heads: 2, KVHeads: 1, FFN: 128,
	Vocab: ggufgen.MinVocab, ContextLength: 2048, WeightType: "F32",
}

func TestBinaryFromEnv(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "ollama")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExe := filepath.Join(dir, "plain")
	if err := os.WriteFile(notExe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     string
		want    string
		wantErr bool
	}{
		{"executable", exe, exe, false},
		{"missing", filepath.Join(dir, "nope"), "", true},
		{"not executable", notExe, "", true},
		{"directory", dir, "", true},
	}
	// A file written 0644 reads back 0666 where the file system keeps no
	// modes (Windows): there the system judges the file when it starts it.
	fi, err := os.Stat(notExe)
	noModes := err == nil && fi.Mode()&0o111 == 0 && fi.Mode().Perm()&0o022 != 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env == notExe && noModes {
				t.Skip("this file system keeps no execute bits")
			}
			t.Setenv(ollamatest.EnvBinary, tt.env)
			got, err := ollamatest.Binary()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Binary() = %q, %v; want error %v", got, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Binary() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBinaryFromCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv(ollamatest.EnvBinary, "")
	t.Setenv(ollamatest.EnvCache, cache)
	if _, err := ollamatest.Binary(); err == nil {
		t.Fatal("Binary() found a binary in an empty cache")
	}
	// The layout scripts/ollama-build.sh writes: <cache>/ollama-<version>/ollama.
	matches, _ := filepath.Glob(filepath.Join(cache, "*"))
	if len(matches) != 0 {
		t.Fatalf("Binary() wrote into the cache: %v", matches)
	}
}

// A second server generation is picked by version from the same cache.
func TestBinaryByVersion(t *testing.T) {
	cache := t.TempDir()
	t.Setenv(ollamatest.EnvBinary, "")
	t.Setenv(ollamatest.EnvCache, cache)
	exe := filepath.Join(cache, "ollama-v0.24.0", "ollama")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v0.24.0", "0.24.0"} {
		t.Setenv(ollamatest.EnvVersion, v)
		if got, err := ollamatest.Binary(); err != nil || got != exe {
			t.Errorf("%s=%s: Binary() = %q, %v; want %q", ollamatest.EnvVersion, v, got, err, exe)
		}
	}
	t.Setenv(ollamatest.EnvVersion, "v0.99.0")
	if got, err := ollamatest.Binary(); err == nil {
		t.Errorf("Binary() = %q for a version never built", got)
	}
}

// TestServer walks the whole lifecycle against the real binary: start,
// create through the API, load, stop, restart on the same port and store.
func TestServer(t *testing.T) {
	began := time.Now()
	s := ollamatest.Start(t)
	t.Logf("server %s started in %s at %s (log %s)", s.Version, time.Since(began).Round(time.Millisecond), s.URL, s.LogPath)
	// The build stamps its version (scripts/ollama-build.sh): a server
	// reporting 0.0.0 would be accounted as the newest generation.
	if s.Version == "" || s.Version == "0.0.0" {
		t.Errorf("server reports version %q, want the version it was built from", s.Version)
	}
	if s.Host != s.URL.Host || s.URL.Hostname() != "127.0.0.1" {
		t.Errorf("Host %q, URL %s: want 127.0.0.1:<port> in both", s.Host, s.URL)
	}

	began = time.Now()
	s.Create(t, "tiny", tinyLlama)
	t.Logf("create took %s", time.Since(began).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list, err := s.Client.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) != 1 || list.Models[0].Name != "tiny:latest" {
		t.Fatalf("list = %+v, want tiny:latest alone", list.Models)
	}
	if got := s.Running(t); len(got) != 0 {
		t.Fatalf("running before any load = %+v", got)
	}

	began = time.Now()
	err = s.Client.Generate(ctx, &api.GenerateRequest{Model: "tiny", KeepAlive: &api.Duration{Duration: -1}},
		func(api.GenerateResponse) error { return nil })
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Logf("load took %s", time.Since(began).Round(time.Millisecond))
	if got := s.Running(t); len(got) != 1 || got[0].Size <= 0 {
		t.Fatalf("running after load = %+v, want tiny with a size", got)
	}

	port, pid := s.URL.Port(), s.PID()
	began = time.Now()
	s.Restart(t)
	t.Logf("restart took %s", time.Since(began).Round(time.Millisecond))
	if s.URL.Port() != port {
		t.Errorf("port after restart %s, want %s", s.URL.Port(), port)
	}
	if s.PID() == pid || s.PID() == 0 {
		t.Errorf("pid after restart %d (was %d): want a new process", s.PID(), pid)
	}
	// A restart unloads everything and keeps the store.
	if got := s.Running(t); len(got) != 0 {
		t.Errorf("running after restart = %+v, want none", got)
	}
	list, err = s.Client.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) != 1 {
		t.Errorf("list after restart = %+v, want tiny still there", list.Models)
	}

	// Kill: the server and its runner die at once; Relaunch brings the
	// server back, empty, with its store.
	err = s.Client.Generate(ctx, &api.GenerateRequest{Model: "tiny", KeepAlive: &api.Duration{Duration: -1}},
		func(api.GenerateResponse) error { return nil })
	if err != nil {
		t.Fatalf("load before kill: %v", err)
	}
	pid = s.PID()
	s.Kill()
	if s.PID() != 0 {
		t.Errorf("PID after Kill = %d", s.PID())
	}
	if _, err := s.Client.Version(ctx); err == nil {
		t.Error("Version answered after Kill")
	}
	if alive := groupAlive(pid); alive {
		t.Errorf("a process of the killed server's group (%d) still runs", pid)
	}
	if err := s.Relaunch(); err != nil {
		t.Fatal(err)
	}
	if got := s.Running(t); len(got) != 0 {
		t.Errorf("running after kill and relaunch = %+v, want none", got)
	}

	s.Stop()
	if s.PID() != 0 {
		t.Errorf("PID after Stop = %d", s.PID())
	}
	if _, err := s.Client.Version(ctx); err == nil {
		t.Error("Version answered after Stop")
	}
	s.Stop() // twice is fine
}
