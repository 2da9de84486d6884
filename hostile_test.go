package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/cli"
	"github.com/vramkeeper/vramkeeper/internal/faultproxy"
	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/internal/testwait"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
)

// Hostile and broken clients against `vramkeeper serve` as a user runs it
// (issue 20): the cases whose reproduction needed the binary (a crash, a
// state folder, the flags given at start).

// tinySpec is a model that loads in a moment on a CPU; models of as many
// layers are one file to Ollama, and one runner.
func tinySpec(layers int) ggufgen.Spec {
	return ggufgen.Spec{Arch: "llama", Layers: layers, Embd: 128, Heads: 2, KVHeads: 2, FFN: 256,
		Vocab: ggufgen.MinVocab, ContextLength: 4096, WeightType: "F32"}
}

// kill9 ends p at once, as a crash or `kill -9` would; its cleanup then
// finds it ended.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := <-p.done
	p.done <- err
}

// TestKillDuringAYield: `vramkeeper serve` is killed (SIGKILL) at each
// moment of a yield, then started again on the same state folder. Once
// it has read the server, what status says is on the card is what
// /api/ps says; a yield that was recorded is finished, status says the
// card is given back and lists both models, and restore puts both back at
// their contexts. While the yield is under way, requests for other models
// (a generation, a load) fail and nothing reaches Ollama's load. A fault
// proxy between serve and Ollama holds unloads, to stop the yield at each
// step. The state file used to say handed_back with an empty or partial
// list: status said the GPU was given back while models were loaded, and
// restore had nothing to restore.
func TestKillDuringAYield(t *testing.T) {
	outer := t
	srv := ollamatest.Start(t)
	srv.Create(t, "tiny-a:latest", tinySpec(1))
	srv.Create(t, "tiny-b:latest", tinySpec(2))
	srv.Create(t, "tiny-c:latest", tinySpec(3))
	proxy, err := faultproxy.Listen(srv.URL, faultproxy.Options{MaxHold: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	dir := t.TempDir()
	addr := ollamatest.FreeAddrT(t)
	flags := []string{"--ollama", proxy.URL.String(), "--listen", addr, "--state-dir", filepath.Join(dir, "state"),
		"--config", filepath.Join(dir, "none.toml"), "--budget", "2GiB", "--ctx", "1024"}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	want := map[string]int{"tiny-a:latest": 2048, "tiny-b:latest": 1024}
	onCard := func() map[string]int {
		out := map[string]int{}
		for _, p := range srv.Running(t) {
			out[p.Name] = p.ContextLength
		}
		return out
	}
	// start runs serve until the whole test ends (a moment's subtest
	// hands it to the next).
	start := func(t *testing.T) (*proc, *client.Client) {
		t.Helper()
		p := startServe(outer, flags...)
		waitAPI(t, addr, p)
		c, err := client.Dial(ctx, addr, "")
		if err != nil {
			t.Fatal(err)
		}
		return p, c
	}
	p, c := start(t)
	if _, err := c.LoadAt(ctx, "tiny-a", 2048, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(ctx, "tiny-b", "test"); err != nil {
		t.Fatal(err)
	}
	unload := faultproxy.Match{Intent: faultproxy.Unload}
	load := faultproxy.Match{Intent: faultproxy.Load}

	// Each moment: the proxy's rules for the yield's unloads, and when to
	// kill. recorded: the yield had written its record by then.
	for _, m := range []struct {
		name     string
		rules    []faultproxy.Rule
		kill     func(t *testing.T, yielded <-chan error)
		recorded bool
	}{
		{name: "as the yield is asked", kill: func(*testing.T, <-chan error) {}},
		{name: "recorded, nothing unloaded yet", recorded: true,
			rules: []faultproxy.Rule{{Match: unload, Fault: faultproxy.Hang}},
			kill: func(t *testing.T, _ <-chan error) {
				if err := proxy.Wait(ctx, unload, 1); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "one unloaded, the other's unload under way", recorded: true,
			rules: []faultproxy.Rule{{Match: unload, Fault: faultproxy.Pass, Times: 1}, {Match: unload, Fault: faultproxy.Hang}},
			kill: func(t *testing.T, _ <-chan error) {
				if err := proxy.Wait(ctx, unload, 2); err != nil {
					t.Fatal(err)
				}
				// Requests that come during the yield fail; none loads
				// (one used to load 17 s into a yield, evicting another).
				if err := generate(ctx, addr, "tiny-c"); err == nil || !strings.Contains(err.Error(), "409") {
					t.Errorf("a generation during the yield: %v, want 409 (the GPU was given back)", err)
				}
				gone := slices.Collect(maps.Keys(want))
				gone = slices.DeleteFunc(gone, func(n string) bool { _, on := onCard()[n]; return on })
				for _, name := range append([]string{"tiny-c"}, gone...) {
					if _, err := c.Load(ctx, name, "test"); err == nil {
						t.Errorf("a load of %s during the yield succeeded", name)
					}
				}
				if n := proxy.Count(load); n != 0 {
					t.Errorf("%d loads reached Ollama during the yield", n)
				}
			}},
		{name: "done, the answer on its way", recorded: true,
			kill: func(t *testing.T, yielded <-chan error) {
				if err := <-yielded; err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(m.name, func(t *testing.T) {
			if got := onCard(); !maps.Equal(got, want) {
				t.Fatalf("before the yield /api/ps = %v, want %v", got, want)
			}
			proxy.Reset()
			proxy.Set(m.rules...)
			yielded := make(chan error, 1)
			go func() {
				_, err := c.Yield(ctx)
				yielded <- err
			}()
			m.kill(t, yielded)
			p.kill9(t)
			proxy.Reset() // held unloads never reached Ollama
			began := time.Now()
			p, c = start(t)

			var snap manager.Snapshot
			testwait.Until(t, "status to agree with /api/ps", time.Minute, func() (bool, string) {
				snap, err = c.Snapshot(ctx)
				if err != nil {
					return false, err.Error()
				}
				card := onCard()
				loaded := map[string]int{}
				for _, v := range snap.Models {
					if v.Loaded {
						loaded[v.Name] = v.LoadedCtx
					}
				}
				agree := snap.Discovered && maps.Equal(loaded, card) && (!snap.Yielded || len(card) == 0)
				return agree, fmt.Sprintf("status: yielded %v %v, loaded %v; /api/ps %v", snap.Yielded, snap.YieldedModels, loaded, card)
			})
			t.Logf("restarted and settled in %s: yielded %v, to restore %v", time.Since(began).Round(time.Millisecond), snap.Yielded, snap.YieldedModels)
			if m.recorded && !snap.Yielded {
				t.Fatal("the yield was recorded before the kill, but status says the card was not given back")
			}
			if snap.Yielded && !slices.Equal(slices.Sorted(slices.Values(snap.YieldedModels)), slices.Sorted(maps.Keys(want))) {
				t.Fatalf("status lists %v to restore, want %v", snap.YieldedModels, slices.Sorted(maps.Keys(want)))
			}
			restored, err := c.Restore(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if snap.Yielded && !slices.Equal(slices.Sorted(slices.Values(restored)), slices.Sorted(maps.Keys(want))) {
				t.Errorf("restore put back %v, status said %v", restored, snap.YieldedModels)
			}
			if got := onCard(); !maps.Equal(got, want) {
				t.Fatalf("after restore /api/ps = %v, want %v", got, want)
			}
		})
	}
}

// generate asks serve for a short generation of model.
func generate(ctx context.Context, addr, model string) error {
	body := fmt.Sprintf(`{"model":%q,"prompt":"hi","stream":false,"options":{"num_predict":1}}`, model)
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/api/generate", strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// TestStartBudgetOutlivesASettingsPatch: the budget given to serve at
// start stays through settings patches that do not name it (it used to
// fall back to the default at any POST /keeper/v1/settings), and a
// context length out of range is refused.
func TestStartBudgetOutlivesASettingsPatch(t *testing.T) {
	dir := t.TempDir()
	addr := ollamatest.FreeAddrT(t)
	p := startServe(t, "--ollama", "http://127.0.0.1:9", "--listen", addr, "--state-dir", filepath.Join(dir, "state"),
		"--config", filepath.Join(dir, "none.toml"), "--budget", "160MiB")
	waitAPI(t, addr, p)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, addr, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"max_loaded":3}`, 200}, {`{}`, 200}, {`{"context_length":4096}`, 200},
		// Out of range (it used to be taken): refused, nothing changed.
		{`{"context_length":9200000000000000000}`, 400}, {`{"context_length":9.2e18}`, 400},
	} {
		resp, err := http.Post("http://"+addr+"/keeper/v1/settings", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("POST settings %s: HTTP %d, want %d", tc.body, resp.StatusCode, tc.status)
		}
		snap, err := c.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Budget != 160<<20 || snap.Settings.Budget.Bytes != 160<<20 {
			t.Errorf("after POST settings %s: budget %d (setting %+v), want the 160 MiB given at start", tc.body, snap.Budget, snap.Settings.Budget)
		}
		if snap.Settings.MaxLoaded != 3 || snap.Settings.NumCtx > 4096 {
			t.Errorf("after POST settings %s: max_loaded %d, context_length %d", tc.body, snap.Settings.MaxLoaded, snap.Settings.NumCtx)
		}
	}
}

// TestServeOnAReadOnlyStateFolder: serve on a state folder it cannot
// write (it used to exit 1, "recording this instance ... permission
// denied") runs on with one warning: it loads, status answers (the CLI
// finds it), and a second serve on the folder is still refused.
func TestServeOnAReadOnlyStateFolder(t *testing.T) {
	bin := binary(t)
	srv := ollamatest.Start(t)
	srv.Create(t, "tiny-a:latest", tinySpec(1))
	// A folder only this test may remove, readable by the user the
	// binary runs as (another one, when the test runs as root).
	dir, err := os.MkdirTemp("", "vramkeeper-readonly-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.Chmod(filepath.Join(dir, "state"), 0o755)
		_ = os.RemoveAll(dir)
	})
	for _, d := range []string{dir, filepath.Join(dir, "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(dir, "tmp") // the stand-ins go here
	if err := os.Mkdir(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "bin", "vramkeeper")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	// The folder holds the state of an earlier run, then turns read-only.
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "state.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o555); err != nil {
		t.Fatal(err)
	}
	addr := ollamatest.FreeAddrT(t)
	args := []string{"--ollama", srv.URL.String(), "--listen", addr, "--state-dir", state,
		"--config", filepath.Join(dir, "none.toml"), "--budget", "1GiB", "--ctx", "1024"}
	env := cleanEnv("LANG=C.UTF-8", "TMPDIR="+tmp, "HOME="+tmp)
	serve := readOnlyCommand(t, exe, env, append([]string{"serve"}, args...)...)
	p := &proc{cmd: serve, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	stderr := &lockedWriter{w: p.stderr}
	serve.Stderr = stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- serve.Wait() }()
	t.Cleanup(func() {
		_ = serve.Process.Kill()
		err := <-p.done
		p.done <- err
	})
	waitAPI(t, addr, p)

	vk := func(args ...string) (int, string, string) {
		cmd := readOnlyCommand(t, exe, env, args...)
		return runCmd(t, cmd)
	}
	if code, out, errs := vk(append([]string{"load", "tiny-a"}, args...)...); code != 0 {
		t.Fatalf("load: exit %d %s %s", code, out, errs)
	}
	code, out, errs := vk(append([]string{"status", "--json"}, args...)...)
	var status cli.StatusJSON
	if code != 0 || json.Unmarshal([]byte(out), &status) != nil {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
	}
	if len(status.Loaded) != 1 || status.Loaded[0].Name != "tiny-a:latest" {
		t.Errorf("status says %+v loaded, want tiny-a", status.Loaded)
	}
	second := readOnlyCommand(t, exe, env, append([]string{"serve"}, append(slices.Clone(args[:2]), "--listen", ollamatest.FreeAddrT(t), "--state-dir", state)...)...)
	if code, _, errs := runCmd(t, second); code != 8 {
		t.Errorf("a second serve on the folder: exit %d, want 8 (refused); stderr:\n%s", code, errs)
	}
	select {
	case err := <-p.done:
		t.Fatalf("serve exited: %v\n%s", err, stderr.String())
	default:
	}
	// One warning about the folder (others, such as a machine without a
	// GPU driver, are not this test's).
	warned := 0
	for line := range strings.Lines(stderr.String()) {
		if strings.Contains(line, "level=WARN") && (strings.Contains(line, "state folder") || strings.Contains(line, state)) {
			warned++
		}
	}
	if warned != 1 || !strings.Contains(stderr.String(), "state folder cannot be written") {
		t.Errorf("%d warnings about the state folder, want one saying it cannot be written:\n%s", warned, stderr.String())
	}
}
