package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// These tests run the built binary, as a user would.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds vramkeeper once per test run.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vramkeeper-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "vramkeeper")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// cleanEnv is the test's environment without locale variables, with the
// given ones added.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "LANG" || name == "LANGUAGE" || strings.HasPrefix(name, "LC_") || name == "OLLAMA_HOST" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// TestNoToolkitNoiseOnAnyLocale: a CLI command under any locale prints its
// own output and nothing from the GUI toolkit (Fyne's lang init used to
// print three "Fyne error" lines on C.UTF-8).
func TestNoToolkitNoiseOnAnyLocale(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	locales := [][]string{
		{"LANG=C.UTF-8"}, {"LANG=C"}, {"LANG=POSIX"}, {"LC_ALL=C.UTF-8"},
		{"LANG=en_US.UTF-8"}, {"LANG=de_DE.UTF-8", "LC_MESSAGES=C.utf8"}, {},
	}
	for _, loc := range locales {
		for _, args := range [][]string{
			{"models"}, {"status", "--json"},
		} {
			t.Run(strings.Join(loc, ",")+" "+strings.Join(args, " "), func(t *testing.T) {
				cmd := exec.Command(bin, append(args, "--ollama", "http://127.0.0.1:9",
					"--state-dir", filepath.Join(dir, "state"), "--config", filepath.Join(dir, "none.toml"))...)
				cmd.Env = cleanEnv(loc...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				err := cmd.Run()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 3 {
					t.Fatalf("exit: %v, want 3 (Ollama unreachable); stderr:\n%s", err, stderr.String())
				}
				lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "vramkeeper: ollama at http://127.0.0.1:9 unreachable") {
					t.Fatalf("stderr holds more than the command's own message:\n%s", stderr.String())
				}
			})
		}
	}
}
