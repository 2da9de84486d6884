package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// sdkDir holds the pinned SDKs (package.json, package-lock.json) and the
// agent script; `npm ci --prefix manager/api/testdata/sdk` installs them.
const sdkDir = "testdata/sdk"

// sdkNode returns the node binary, or skips (fails under
// VRAMKEEPER_REQUIRE_OLLAMA=1) when node or the SDKs are missing.
func sdkNode(t *testing.T) string {
	t.Helper()
	var missing []string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node is not installed")
	}
	for _, pkg := range []string{"openai", "@anthropic-ai/sdk"} {
		if _, err := os.Stat(filepath.Join(sdkDir, "node_modules", pkg, "package.json")); err != nil {
			missing = append(missing, fmt.Sprintf("npm package %s is not installed (run `npm ci --prefix manager/api/testdata/sdk`)", pkg))
		}
	}
	if missing == nil {
		return node
	}
	if os.Getenv(ollamatest.EnvRequire) == "1" {
		t.Fatalf("%s=1 but %s", ollamatest.EnvRequire, strings.Join(missing, "; "))
	}
	t.Skipf("skipping: %s", strings.Join(missing, "; "))
	return ""
}

// sdkAnswer is one answer as agents.mjs saw it.
type sdkAnswer struct {
	Model, Status, Stop, Text, First, Last string
}

// sdkRun is what agents.mjs printed.
type sdkRun struct {
	Responses       sdkAnswer `json:"responses"`
	ResponsesStream sdkAnswer `json:"responses_stream"`
	Messages        sdkAnswer `json:"messages"`
	MessagesStream  sdkAnswer `json:"messages_stream"`
	Other           sdkAnswer `json:"other"`
	LeftAfter       string    `json:"left_after"`
	AnthropicModels []string  `json:"anthropic_models"`
	AnthropicModel  struct {
		ID             string `json:"id"`
		DisplayName    string `json:"display_name"`
		MaxInputTokens int    `json:"max_input_tokens"`
	} `json:"anthropic_model"`
	OpenAIModels []string `json:"openai_models"`
}

// The official openai and @anthropic-ai/sdk clients, as Codex-style and
// Claude-Code-style agents use them, get answers from a real Ollama
// through VRAM Keeper with auto:chat, plain and streamed, while /api/ps
// stays within a budget that holds one of the two models, Ollama never
// loads a model the manager did not, and an agent that leaves mid-stream
// leaves no hold behind.
func TestOfficialSDKs(t *testing.T) {
	// Each SDK sends the token its own way: OpenAI's as a bearer token,
	// Anthropic's as x-api-key.
	const sdkToken = "sdk-s3cret"
	node := sdkNode(t)
	r := newRig(t, map[string]ggufgen.Spec{
		"tiny-chat":  llama(2, 64),
		"tiny-coder": llama(2, 128),
	}, manager.Options{}, server.Options{Token: sdkToken})
	ctx := ctxFor(t, 4*time.Minute)

	// A budget above the larger estimate and below both together.
	var sizes []uint64
	for _, n := range []string{"tiny-chat:latest", "tiny-coder:latest"} {
		v, ok := r.m.Snapshot().Model(n)
		if !ok || v.EstimateBytes == 0 {
			t.Fatalf("%s: no estimate (%+v)", n, v)
		}
		sizes = append(sizes, v.EstimateBytes)
	}
	budget := (max(sizes[0], sizes[1]) + sizes[0] + sizes[1]) / 2
	c, err := client.Dial(ctx, r.http.URL, sdkToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(ctx, manager.SettingsPatch{Budget: &config.Size{Bytes: budget}}); err != nil {
		t.Fatal(err)
	}
	if got := r.m.Snapshot().Budget; got != budget {
		t.Fatalf("budget %d, want %d", got, budget)
	}
	runnersBefore := loadsInLog(r)
	// BestModelForTask loads the model it picks: count it among the loads.
	chat, err := r.m.BestModelForTask(ctx, "chat", "")
	if err != nil {
		t.Fatal(err)
	}
	other := "tiny-coder:latest"
	if chat.Model == other {
		other = "tiny-chat:latest"
	}

	ps := samplePS(ctx, t, r, budget)
	cmd := exec.CommandContext(ctx, node, "agents.mjs")
	cmd.Dir = sdkDir
	cmd.Env = append(os.Environ(), "VRAMKEEPER_URL="+r.http.URL, "VRAMKEEPER_TOKEN="+sdkToken, "MODEL=auto:chat", "OTHER_MODEL="+other)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	began := time.Now()
	out, err := cmd.Output()
	took := time.Since(began)
	samples, maxBytes := ps()
	if err != nil {
		t.Fatalf("agents.mjs: %v\n%s", err, stderr.String())
	}
	var run sdkRun
	if err := json.Unmarshal(out, &run); err != nil {
		t.Fatalf("agents.mjs printed %q: %v", out, err)
	}
	t.Logf("SDK calls took %s; /api/ps: %d samples, max %d bytes of a %d budget (estimates %v)", took.Round(time.Millisecond), samples, maxBytes, budget, sizes)

	real := []string{"tiny-chat:latest", "tiny-coder:latest"}
	for _, c := range []struct {
		name      string
		got       sdkAnswer
		end       string // the status, stop reason or last event it ended with
		wantEnd   string // "" for any
		wantModel []string
	}{
		{"responses.create", run.Responses, run.Responses.Status, "completed", real},
		{"responses.create stream", run.ResponsesStream, run.ResponsesStream.Last, "response.completed", real},
		{"messages.create", run.Messages, run.Messages.Stop, "", real},
		{"messages.create stream", run.MessagesStream, run.MessagesStream.Last, "message_stop", real},
		{"messages.stream on the other model", run.Other, run.Other.Stop, "", []string{other}},
	} {
		if c.got.Text == "" || !slices.Contains(c.wantModel, c.got.Model) || c.end == "" || c.wantEnd != "" && c.end != c.wantEnd {
			t.Errorf("%s: %+v; want text from one of %v ending %q", c.name, c.got, c.wantModel, c.wantEnd)
		}
	}
	t.Logf("answers: responses %q, messages %q, other %q", run.Responses.Text, run.Messages.Text, run.Other.Text)
	for _, list := range [][]string{run.AnthropicModels, run.OpenAIModels} {
		if !slices.Contains(list, "auto:chat") || !slices.Contains(list, "tiny-chat:latest") {
			t.Errorf("model list %v lacks auto:chat or tiny-chat:latest", list)
		}
	}
	if a := run.AnthropicModel; a.ID != "auto:chat" || a.MaxInputTokens == 0 {
		t.Errorf("models.retrieve(auto:chat) = %+v", a)
	}

	// The agent that left: its hold ends (the manager publishes the
	// release on its own goroutine).
	if run.LeftAfter != "message_start" {
		t.Errorf("the leaving agent saw %q first, want message_start", run.LeftAfter)
	}
	deadline := time.Now().Add(30 * time.Second)
	for held := true; held; {
		held = false
		for _, v := range r.m.Snapshot().Models {
			if v.InFlight > 0 {
				held = true
				if time.Now().After(deadline) {
					t.Fatalf("%s still held by %d requests 30 s after every client finished", v.Name, v.InFlight)
				}
			}
		}
		if held {
			time.Sleep(20 * time.Millisecond) // polling a condition, bounded
		}
	}

	var loads, evictions int
	for _, e := range r.m.History() {
		switch e.Kind {
		case manager.EventLoaded:
			loads++
		case manager.EventEvicted, manager.EventUnloaded:
			evictions++
		}
	}
	if evictions == 0 {
		t.Errorf("no eviction: the budget of %d bytes should hold one of %v", budget, sizes)
	}
	if n := loadsInLog(r) - runnersBefore; n != loads {
		t.Errorf("Ollama started %d runners for the manager's %d loads: it reloaded behind the manager", n, loads)
	}
	for _, p := range r.ollama.Running(t) {
		v, _ := r.m.Snapshot().Model(p.Name)
		if p.ContextLength != v.NumCtx || time.Until(p.ExpiresAt) < 24*time.Hour {
			t.Errorf("%s runs at num_ctx %d expiring %s; the manager loaded it at %d to keep", p.Name, p.ContextLength, p.ExpiresAt, v.NumCtx)
		}
	}
}

// samplePS samples Ollama's /api/ps every 20 ms until the returned stop is
// called, failing t for any sample over budget; stop returns the number of
// samples and the most bytes seen.
func samplePS(ctx context.Context, t *testing.T, r *rig, budget uint64) (stop func() (samples int, maxBytes uint64)) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var samples int
	var maxBytes uint64
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if ps, err := r.ollama.Client.ListRunning(ctx); err == nil {
				var sum uint64
				for _, p := range ps.Models {
					sum += uint64(p.Size)
				}
				samples++
				maxBytes = max(maxBytes, sum)
				if sum > budget {
					t.Errorf("sample %d: /api/ps holds %d bytes in %d models, over the %d budget", samples, sum, len(ps.Models), budget)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return func() (int, uint64) {
		cancel()
		wg.Wait()
		return samples, maxBytes
	}
}
