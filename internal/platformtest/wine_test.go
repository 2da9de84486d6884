//go:build linux

package platformtest

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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
)

// Set by scripts/wine-test.sh.
const (
	// EnvWineRoot is the trixie chroot with Wine, mounted, the repository
	// bound into it at its own path.
	EnvWineRoot = "VRAMKEEPER_WINE_ROOT"
	// EnvWindowsExe is vramkeeper.exe, inside the repository.
	EnvWindowsExe = "VRAMKEEPER_WINDOWS_EXE"
	// EnvShots, when set, is where the tray test keeps its screenshots.
	EnvShots = "VRAMKEEPER_SHOTS"
)

var tinySpecs = map[string]ggufgen.Spec{
	"tiny-a:latest": {Arch: "llama", Layers: 2, Embd: 64, Heads: 2, KVHeads: 1, FFN: 128, Vocab: ggufgen.MinVocab, ContextLength: 2048, WeightType: "F32"},
	"tiny-b:latest": {Arch: "qwen2", Layers: 2, Embd: 64, Heads: 2, KVHeads: 1, FFN: 128, Vocab: ggufgen.MinVocab, ContextLength: 2048, WeightType: "F16"},
}

type wineEnv struct {
	root, exe string
}

func needWine(t *testing.T) wineEnv {
	t.Helper()
	w := wineEnv{root: os.Getenv(EnvWineRoot), exe: os.Getenv(EnvWindowsExe)}
	if w.root == "" || w.exe == "" {
		t.Skipf("the Windows tier runs from scripts/wine-test.sh (%s and %s unset)", EnvWineRoot, EnvWindowsExe)
	}
	return w
}

// cmd runs a Windows program under Wine in the chroot, in a clean
// environment; extra holds more variables (DISPLAY).
func (w wineEnv) cmd(ctx context.Context, extra []string, args ...string) *exec.Cmd {
	env := []string{"env", "-i", "HOME=/root", "PATH=/usr/bin:/bin", "WINEDEBUG=-all", "WINEPREFIX=/root/.wine", "WINEDLLOVERRIDES=mscoree,mshtml="}
	env = append(env, extra...)
	return exec.CommandContext(ctx, "chroot", append(append([]string{w.root}, env...), args...)...)
}

// vk runs `vramkeeper.exe ARGS` and returns its output and exit code.
func (w wineEnv) vk(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	c := w.cmd(ctx, nil, append([]string{"wine", w.exe}, args...)...)
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code = c.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("wine vramkeeper.exe %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// prefixPath is where a path of the Wine prefix's C: drive lies on the host.
func (w wineEnv) prefixPath(rel ...string) string {
	return filepath.Join(append([]string{w.root, "root", ".wine", "drive_c"}, rel...)...)
}

// TestWindowsVersion: the release the .exe was built as, for Windows.
func TestWindowsVersion(t *testing.T) {
	w := needWine(t)
	out, errs, code := w.vk(t, "version")
	if code != 0 || !strings.HasPrefix(out, "vramkeeper ") || !strings.Contains(out, "(windows/amd64") {
		t.Fatalf("version: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// TestWindowsServeManagesLinuxOllama: vramkeeper.exe serve under Wine keeps
// the real Linux Ollama inside its limits over loopback: two models asked
// for in turn through its proxy, the second evicts the first (one model at
// most), and status and history, asked of the Windows CLI, agree with
// Ollama's /api/ps. State and config live where Windows wants them.
func TestWindowsServeManagesLinuxOllama(t *testing.T) {
	w := needWine(t)
	srv := ollamatest.Start(t)
	for name, spec := range tinySpecs {
		srv.Create(t, name, spec)
	}
	state := w.prefixPath("users", "root", "AppData", "Local", "vramkeeper")
	if err := os.RemoveAll(state); err != nil { // an earlier run's history
		t.Fatal(err)
	}
	listen := ollamatest.FreeAddrT(t)
	common := []string{"--ollama", srv.URL.String(), "--listen", listen}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log bytes.Buffer
	serve := w.cmd(ctx, nil, append([]string{"wine", w.exe, "serve", "--max-loaded", "1", "--ctx", "1024", "-v"}, common...)...)
	serve.Stdout, serve.Stderr = &log, &log
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = serve.Wait(); close(exited) }()
	defer func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("serve's log:\n%s", tail(log.String(), 6000))
		}
	}()
	base := "http://" + listen
	waitHTTP(t, base+"/api/version", exited, &exitErr)

	for _, model := range []string{"tiny-a:latest", "tiny-b:latest"} {
		body := fmt.Sprintf(`{"model":%q,"prompt":"hi","stream":false,"options":{"num_predict":1}}`, model)
		resp, err := http.Post(base+"/api/generate", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("generate %s through the proxy: %v", model, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("generate %s through the proxy: %s %s", model, resp.Status, b)
		}
		if ps := runningNames(t, srv); !slices.Equal(ps, []string{model}) {
			t.Fatalf("after asking for %s, Ollama runs %v", model, ps)
		}
	}

	out, errs, code := w.vk(t, append([]string{"status", "--json"}, common...)...)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errs)
	}
	var st struct {
		OllamaUp bool `json:"ollama_up"`
		Loaded   []struct {
			Name string `json:"name"`
		} `json:"loaded"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	var loaded []string
	for _, m := range st.Loaded {
		loaded = append(loaded, m.Name)
	}
	if ps := runningNames(t, srv); !st.OllamaUp || !slices.Equal(loaded, ps) {
		t.Errorf("status says loaded %v (up %v); /api/ps says %v", loaded, st.OllamaUp, ps)
	}

	out, errs, code = w.vk(t, append([]string{"history", "--json"}, common...)...)
	if code != 0 {
		t.Fatalf("history: exit %d: %s", code, errs)
	}
	var events []struct {
		Kind, Model, For string
	}
	if err := json.Unmarshal([]byte(out), &events); err != nil {
		t.Fatalf("history --json: %v\n%s", err, out)
	}
	if !slices.ContainsFunc(events, func(e struct{ Kind, Model, For string }) bool {
		return e.Kind == "evicted" && e.Model == "tiny-a:latest" && e.For == "tiny-b:latest"
	}) {
		t.Errorf("history has no eviction of tiny-a for tiny-b: %s", out)
	}

	// A second serve on the same state folder is refused at once (exit 8),
	// naming the first: the lock works on Windows' files too.
	_, errs, code = w.vk(t, "serve", "--ollama", srv.URL.String(), "--listen", ollamatest.FreeAddrT(t))
	if code != 8 || !strings.Contains(errs, "serve") {
		t.Errorf("second serve: exit %d, stderr %q; want 8 naming the first", code, errs)
	}
	for _, f := range []string{"instance.json", "vramkeeper.lock"} {
		if _, err := os.Stat(filepath.Join(state, f)); err != nil {
			t.Errorf("state is not in %%LOCALAPPDATA%%\\vramkeeper: %v", err)
		}
	}
}

func runningNames(t *testing.T, srv *ollamatest.Server) []string {
	t.Helper()
	var names []string
	for _, m := range srv.Running(t) {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names
}

// waitHTTP waits until url answers 200, failing early when the process
// exits (exited closed, *why set).
func waitHTTP(t *testing.T, url string, exited <-chan struct{}, why *error) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("the process exited before %s answered: %v", url, *why)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 90 s", url)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
