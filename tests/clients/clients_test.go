// Package clients_test runs clients this project did not write against the
// real vramkeeper binary in front of a real Ollama (built from the pinned
// module, internal/ollamatest): the official TypeScript MCP SDK over stdio
// and Streamable HTTP, promtool on a scrape, and a Prometheus server
// scraping `vramkeeper serve`.
//
// Needs node with the pinned SDK (`npm ci --prefix tests/clients/testdata/mcp`)
// and Debian's prometheus package (promtool, prometheus); without them the
// tests skip, unless VRAMKEEPER_REQUIRE_OLLAMA=1 (scripts/test.sh), which
// makes them fail.
package clients_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/internal/vkbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	vkbin.Remove()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// binary is vramkeeper, built once.
func binary(t *testing.T) string { return vkbin.Path(t) }

// need returns the path of a program the test needs, or skips (fails when
// VRAMKEEPER_REQUIRE_OLLAMA=1) saying how to install it.
func need(t *testing.T, prog, how string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err == nil {
		return p
	}
	missing(t, fmt.Sprintf("%s is not installed (%s)", prog, how))
	return ""
}

func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv(ollamatest.EnvRequire) == "1" {
		t.Fatalf("%s=1 but %s", ollamatest.EnvRequire, what)
	}
	t.Skipf("skipping: %s", what)
}

// mcpDir holds the pinned TypeScript SDK and the client script.
const mcpDir = "testdata/mcp"

// node returns the node binary with the TypeScript MCP SDK installed.
func node(t *testing.T) string {
	t.Helper()
	n := need(t, "node", "apt-get install nodejs npm")
	if _, err := os.Stat(filepath.Join(mcpDir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		missing(t, "the TypeScript MCP SDK is not installed (run `npm ci --prefix tests/clients/testdata/mcp`)")
	}
	return n
}

// tiny is a llama-shaped model of a few MB that Ollama loads in a second.
func tiny(layers, embd int) ggufgen.Spec {
	return ggufgen.Spec{
		Arch: "llama", Layers: layers, Embd: embd, Heads: embd / 32, KVHeads: embd / 32, FFN: 2 * embd,
		Vocab: ggufgen.MinVocab, ContextLength: 2048, WeightType: "F32",
	}
}

// The models every test here installs: two that fit the budget one at a
// time, and one that never fits it.
const (
	chatModel  = "tiny-chat:latest"
	coderModel = "tiny-coder:latest"
	bigModel   = "too-big:latest"
)

// world is a real Ollama with the three models, and the flags that point a
// vramkeeper at it with a budget that holds either small model and never
// the big one, and one model at a time.
type world struct {
	ollama *ollamatest.Server
	dir    string
	// flags are the settings flags every vramkeeper process here gets.
	flags  []string
	budget uint64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	bin := binary(t)
	o := ollamatest.Start(t)
	o.Create(t, "tiny-chat", tiny(2, 64))
	o.Create(t, "tiny-coder", tiny(2, 128))
	o.Create(t, "too-big", tiny(6, 768))
	w := &world{ollama: o, dir: t.TempDir()}
	// The estimates, read by a one-shot command, set the budget.
	out, err := exec.Command(bin, "models", "--json", "--ollama", o.URL.String(),
		"--state-dir", filepath.Join(w.dir, "probe"), "--config", filepath.Join(w.dir, "none.toml"), "--listen", ollamatest.FreeAddrT(t)).Output()
	if err != nil {
		t.Fatalf("vramkeeper models: %v", err)
	}
	var models []struct {
		Name          string `json:"name"`
		EstimateBytes uint64 `json:"estimate_bytes"`
	}
	if err := json.Unmarshal(out, &models); err != nil {
		t.Fatalf("models --json: %v\n%s", err, out)
	}
	est := map[string]uint64{}
	for _, m := range models {
		est[m.Name] = m.EstimateBytes
	}
	small := max(est[chatModel], est[coderModel])
	if small == 0 || est[bigModel] <= small*2 {
		t.Fatalf("estimates %v: want two small models and one over twice their size", est)
	}
	w.budget = (small + est[bigModel]) / 2
	w.flags = []string{"--ollama", o.URL.String(), "--budget", fmt.Sprintf("%dB", w.budget), "--max-loaded", "1"}
	return w
}

// serve is a running `vramkeeper serve`.
type serve struct {
	addr, token, config, state string
	stderr                     *lockedBuffer
}

// startServe runs `vramkeeper serve` on a free loopback port with token
// set in its config file, until the test ends.
func (w *world) startServe(t *testing.T, token string) *serve {
	t.Helper()
	s := &serve{addr: ollamatest.FreeAddrT(t), token: token, config: filepath.Join(w.dir, "serve.toml"),
		state: filepath.Join(w.dir, "serve-state"), stderr: &lockedBuffer{}}
	// No warm start: the test decides what loads.
	if err := os.WriteFile(s.config, []byte(fmt.Sprintf("token = %q\nwarm_start = \"\"\n", token)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), append([]string{"serve", "--listen", s.addr, "--config", s.config, "--state-dir", s.state, "-v"}, w.flags...)...)
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", s.stderr.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if status, _ := s.get(t, "/keeper/v1/status", true); status == http.StatusOK {
			return s
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, s.stderr.String())
		case <-time.After(100 * time.Millisecond): // polling for the listener, bounded by deadline
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer on %s:\n%s", s.addr, s.stderr.String())
		}
	}
}

// get fetches path from serve, with the token or without, and returns the
// status and body.
func (s *serve) get(t *testing.T, path string, withToken bool) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+path, nil)
	if withToken {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := noKeepAlive.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// noKeepAlive leaves no idle connection (and no goroutine) behind.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// running names the models Ollama's /api/ps shows.
func (w *world) running(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, m := range w.ollama.Running(t) {
		names = append(names, m.Name)
	}
	return names
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func other(model string) string {
	if model == chatModel {
		return coderModel
	}
	return chatModel
}

// metric returns the value of one series in a scrape ("" when absent).
func metric(scrape, series string) string {
	for l := range strings.SplitSeq(scrape, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
