package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/internal/vkbin"
)

// These tests run the built binary, as a user would.

// binary builds vramkeeper once per test run.
func binary(t *testing.T) string { return vkbin.Path(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	vkbin.Remove()
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

// instanceRig runs `vramkeeper serve` processes for a test, each killed at
// its end.
type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func startServe(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve"}, args...)...)
	cmd.Env = cleanEnv("LANG=C.UTF-8")
	p := &proc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = &lockedWriter{w: p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// waitAPI waits until a VRAM Keeper answers at addr.
func waitAPI(t *testing.T, addr string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/keeper/v1/status", nil)
		req.Header.Set("Authorization", "Bearer secret")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-p.done:
			p.done <- err // for the cleanup
			t.Fatalf("serve exited: %v", err)
		case <-time.After(100 * time.Millisecond): // polling a condition, bounded
		}
	}
	t.Fatalf("no API at %s", addr)
}

func writeConfig(t *testing.T, path, token string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("token = \""+token+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOneManagerPerOllama: a second serve on the same state folder exits
// at once, naming the first; the CLI uses the running one, even when it
// listens elsewhere than the CLI's config says, and says so and fails
// when refused; an instance on another state folder (another Ollama) runs
// beside it.
func TestOneManagerPerOllama(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	good, wrong := filepath.Join(dir, "good.toml"), filepath.Join(dir, "wrong.toml")
	writeConfig(t, good, "secret")
	writeConfig(t, wrong, "guess")
	addr := ollamatest.FreeAddrT(t)
	common := []string{"--state-dir", state, "--ollama", "http://127.0.0.1:9"}
	first := startServe(t, append([]string{"--listen", addr, "--config", good}, common...)...)
	waitAPI(t, addr, first)

	t.Run("second serve exits, naming the first", func(t *testing.T) {
		began := time.Now()
		second := exec.Command(bin, append([]string{"serve", "--listen", ollamatest.FreeAddrT(t), "--config", good}, common...)...)
		second.Env = cleanEnv("LANG=C.UTF-8")
		var stderr bytes.Buffer
		second.Stderr = &stderr
		done := make(chan error, 1)
		if err := second.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- second.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			_ = second.Process.Kill()
			t.Fatalf("second serve still running after 10 s; stderr:\n%s", stderr.String())
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 8 {
			t.Fatalf("second serve: %v, want exit 8; stderr:\n%s", err, stderr.String())
		}
		msg := stderr.String()
		for _, want := range []string{fmt.Sprintf("pid %d", first.cmd.Process.Pid), "http://" + addr, state} {
			if !strings.Contains(msg, want) {
				t.Errorf("message lacks %q:\n%s", want, msg)
			}
		}
		t.Logf("refused in %v: %s", time.Since(began).Round(time.Millisecond), strings.TrimSpace(msg))
	})

	cli := func(config, listen string, args ...string) (int, string, string) {
		cmd := exec.Command(bin, append(append(args, "--listen", listen, "--config", config), common...)...)
		cmd.Env = cleanEnv("LANG=C.UTF-8")
		return runCmd(t, cmd)
	}
	t.Run("CLI uses the running instance", func(t *testing.T) {
		code, out, errs := cli(good, addr, "status", "--json")
		if code != 0 || !strings.Contains(out, `"budget_bytes"`) {
			t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
		}
	})
	t.Run("CLI finds it where it listens", func(t *testing.T) {
		code, out, errs := cli(good, ollamatest.FreeAddrT(t), "status", "--json")
		if code != 0 || !strings.Contains(out, `"budget_bytes"`) {
			t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
		}
	})
	t.Run("wrong token: refused, said, non-zero", func(t *testing.T) {
		code, _, errs := cli(wrong, addr, "status")
		if code != 9 || !strings.Contains(errs, "token was refused") {
			t.Fatalf("exit %d, want 9 saying the token was refused:\n%s", code, errs)
		}
	})
	t.Run("another state folder runs beside it", func(t *testing.T) {
		other := ollamatest.FreeAddrT(t)
		p := startServe(t, "--listen", other, "--config", good, "--state-dir", filepath.Join(dir, "other"), "--ollama", "http://127.0.0.1:8")
		waitAPI(t, other, p)
	})
	t.Run("second tray hands over to a headless one: exits 8", func(t *testing.T) {
		cmd := exec.Command(bin, append([]string{"--listen", ollamatest.FreeAddrT(t), "--config", good}, common...)...)
		cmd.Env = cleanEnv("LANG=C.UTF-8", "DISPLAY=:99")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 8 || !strings.Contains(stderr.String(), "no window") {
			t.Fatalf("second tray: %v\n%s", err, stderr.String())
		}
	})
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// runCmd runs cmd and returns its exit code, stdout and stderr.
func runCmd(t *testing.T, cmd *exec.Cmd) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}
