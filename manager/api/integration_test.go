package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/mgrtest"

	"github.com/ollama/ollama/api"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/gpu"
	"github.com/vramkeeper/vramkeeper/manager/ollama"
)

const gib = 1 << 30

func llama(layers, embd int) ggufgen.Spec {
	return ggufgen.Spec{
		Arch: "llama", Layers: layers, Embd: embd, Heads: embd / 32, KVHeads: embd / 32, FFN: 2 * embd,
		Vocab: ggufgen.MinVocab, ContextLength: 2048, WeightType: "F32",
	}
}

var tinyBert = ggufgen.Spec{
	Arch: "bert", Layers: 2, Embd: 64, Heads: 2, KVHeads: 2, FFN: 128,
	Vocab: ggufgen.MinVocab, ContextLength: 512, WeightType: "F32",
}

// rig is a real Ollama, a manager over it and VRAM Keeper's server in front.
type rig struct {
	ollama *ollamatest.Server
	m      *manager.Manager
	srv    *server.Server
	http   *httptest.Server
	url    *url.URL
	client *api.Client // the official client, pointed at VRAM Keeper
}

func newRig(t *testing.T, models map[string]ggufgen.Spec, mopt manager.Options, opt server.Options) *rig {
	t.Helper()
	o := ollamatest.Start(t)
	for name, spec := range models {
		o.Create(t, name, spec)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	mopt.Runtime = ollama.New(o.URL, nil)
	mopt.GPU = gpu.New(8*gib, log)
	mopt.StateDir = t.TempDir()
	mopt.PollEvery = 200 * time.Millisecond
	mopt.Logger = log
	if mopt.Settings.Budget.Bytes == 0 {
		mopt.Settings.Budget = config.Size{Bytes: 4 * gib}
	}
	m := mgrtest.Start(t, mopt)
	if err := m.Refresh(ctxFor(t, time.Minute)); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	opt.Log = log
	s := server.New(m, o.URL, opt)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	u, _ := url.Parse(hs.URL)
	return &rig{ollama: o, m: m, srv: s, http: hs, url: u, client: api.NewClient(u, hs.Client())}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func falsePtr() *bool { b := false; return &b }

// loadsInLog counts model loads in Ollama's log, to tell whether Ollama
// reloaded a model behind the manager's back.
func loadsInLog(r *rig) int {
	b, _ := os.ReadFile(r.ollama.LogPath)
	return strings.Count(string(b), `msg="starting runner"`)
}

func TestProxyAgainstRealOllama(t *testing.T) {
	r := newRig(t, map[string]ggufgen.Spec{
		"tiny-chat":  llama(2, 64),
		"tiny-coder": llama(2, 128),
		"tiny-embed": tinyBert,
	}, manager.Options{Settings: manager.Settings{MaxLoaded: 3}}, server.Options{})
	ctx := ctxFor(t, 3*time.Minute)
	opts := map[string]any{"num_predict": 8, "temperature": 0}
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("chat", func(t *testing.T) {
		resp := api.ChatResponse{}
		err := r.client.Chat(ctx, &api.ChatRequest{
			Model: "tiny-chat", Stream: falsePtr(), Options: opts,
			Messages: []api.Message{{Role: "user", Content: "hello"}},
		}, func(c api.ChatResponse) error { resp = c; return nil })
		if err != nil || !resp.Done || resp.Model != "tiny-chat:latest" {
			t.Fatalf("chat: %v, done %v, model %q", err, resp.Done, resp.Model)
		}
	})
	step("chat streaming", func(t *testing.T) {
		chunks := 0
		var last api.ChatResponse
		err := r.client.Chat(ctx, &api.ChatRequest{
			Model: "tiny-chat", Options: opts,
			Messages: []api.Message{{Role: "user", Content: "hello"}},
		}, func(c api.ChatResponse) error { chunks++; last = c; return nil })
		if err != nil || !last.Done {
			t.Fatalf("chat stream: %v, done %v", err, last.Done)
		}
		if chunks < 2 {
			t.Fatalf("streamed %d chunks, want several", chunks)
		}
		t.Logf("streamed %d chunks", chunks)
	})
	step("generate", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			chunks := 0
			var last api.GenerateResponse
			err := r.client.Generate(ctx, &api.GenerateRequest{
				Model: "tiny-chat", Prompt: "once upon", Stream: &stream, Options: opts,
			}, func(g api.GenerateResponse) error { chunks++; last = g; return nil })
			if err != nil || !last.Done {
				t.Fatalf("generate stream=%v: %v, done %v", stream, err, last.Done)
			}
			if stream && chunks < 2 || !stream && chunks != 1 {
				t.Fatalf("generate stream=%v: %d chunks", stream, chunks)
			}
		}
	})
	step("embed", func(t *testing.T) {
		resp, err := r.client.Embed(ctx, &api.EmbedRequest{Model: "tiny-embed", Input: "hello"})
		if err != nil || len(resp.Embeddings) != 1 || len(resp.Embeddings[0]) == 0 {
			t.Fatalf("embed: %v, %+v", err, resp)
		}
		old, err := r.client.Embeddings(ctx, &api.EmbeddingRequest{Model: "tiny-embed", Prompt: "hello"})
		if err != nil || len(old.Embedding) == 0 {
			t.Fatalf("embeddings: %v", err)
		}
	})
	step("auto alias", func(t *testing.T) {
		var resp api.ChatResponse
		err := r.client.Chat(ctx, &api.ChatRequest{
			Model: "auto:code_generation", Stream: falsePtr(), Options: opts,
			Messages: []api.Message{{Role: "user", Content: "func main"}},
		}, func(c api.ChatResponse) error { resp = c; return nil })
		if err != nil || resp.Model != "tiny-coder:latest" {
			t.Fatalf("auto:code_generation: %v, model %q, want tiny-coder:latest", err, resp.Model)
		}
		emb, err := r.client.Embed(ctx, &api.EmbedRequest{Model: "auto:embedding", Input: "x"})
		if err != nil || len(emb.Embeddings) != 1 {
			t.Fatalf("auto:embedding: %v", err)
		}
		var g api.GenerateResponse
		err = r.client.Generate(ctx, &api.GenerateRequest{Model: "auto:chat/assistant", Prompt: "hi", Stream: falsePtr(), Options: opts},
			func(x api.GenerateResponse) error { g = x; return nil })
		if err != nil || g.Model == "" || !g.Done {
			t.Fatalf("auto:chat/assistant: %v %+v", err, g)
		}
	})
	step("tags list models and aliases", func(t *testing.T) {
		list, err := r.client.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range list.Models {
			names = append(names, m.Name)
		}
		for _, want := range []string{"tiny-chat:latest", "tiny-coder:latest", "tiny-embed:latest", "auto:code_generation", "auto:chat", "auto:embedding"} {
			if !slices.Contains(names, want) {
				t.Errorf("/api/tags lacks %s: %v", want, names)
			}
		}
		show, err := r.client.Show(ctx, &api.ShowRequest{Model: "auto:code_generation"})
		if err != nil || show.Details.Family != "llama" {
			t.Errorf("show alias: %v %+v", err, show)
		}
	})
	step("ps: kept forever at the manager's num_ctx", func(t *testing.T) {
		snap := r.m.Snapshot()
		for _, p := range r.ollama.Running(t) {
			v, _ := snap.Model(p.Name)
			if time.Until(p.ExpiresAt) < 24*time.Hour {
				t.Errorf("%s expires at %s: keep_alive not forced", p.Name, p.ExpiresAt)
			}
			if p.ContextLength != v.NumCtx {
				t.Errorf("%s runs at num_ctx %d, manager loaded it at %d", p.Name, p.ContextLength, v.NumCtx)
			}
		}
	})
	step("openai endpoints without reloads", func(t *testing.T) {
		before := loadsInLog(r)
		post := func(path string, body any) *http.Response {
			b, _ := json.Marshal(body)
			resp, err := r.http.Client().Post(r.http.URL+path, "application/json", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		// Streaming chat: several SSE events, then [DONE]. Greedy, with the
		// native streaming step's prompt: a sampled first token can be EOS
		// on these random-weight models, and then one chunk is all there is.
		resp := post("/v1/chat/completions", map[string]any{
			"model": "tiny-chat", "stream": true, "max_tokens": 8, "temperature": 0,
			"messages": []map[string]string{{"role": "user", "content": "hello"}},
		})
		var events []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events = append(events, d)
			}
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || len(events) < 3 || events[len(events)-1] != "[DONE]" {
			t.Fatalf("v1 chat stream: %d, %d events %v", resp.StatusCode, len(events), events)
		}
		// Non-streaming chat and completion.
		for _, c := range []struct {
			path string
			body map[string]any
		}{
			{"/v1/chat/completions", map[string]any{"model": "auto:chat", "max_tokens": 8, "messages": []map[string]string{{"role": "user", "content": "hi"}}}},
			{"/v1/completions", map[string]any{"model": "tiny-chat", "max_tokens": 8, "prompt": "once"}},
		} {
			resp := post(c.path, c.body)
			var out struct {
				Model   string           `json:"model"`
				Choices []map[string]any `json:"choices"`
			}
			err := json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || len(out.Choices) != 1 {
				t.Fatalf("%s: %d %v %+v", c.path, resp.StatusCode, err, out)
			}
		}
		resp = post("/v1/embeddings", map[string]any{"model": "tiny-embed", "input": []string{"a", "b"}})
		var emb struct {
			Data []struct {
				Embedding []float64 `json:"embedding"`
			} `json:"data"`
		}
		err := json.NewDecoder(resp.Body).Decode(&emb)
		resp.Body.Close()
		if err != nil || len(emb.Data) != 2 || len(emb.Data[0].Embedding) == 0 {
			t.Fatalf("v1 embeddings: %v %+v", err, emb)
		}
		resp, err = r.http.Client().Get(r.http.URL + "/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		var models struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&models)
		resp.Body.Close()
		var ids []string
		for _, d := range models.Data {
			ids = append(ids, d.ID)
		}
		if err != nil || !slices.Contains(ids, "tiny-chat:latest") || !slices.Contains(ids, "auto:code_generation") {
			t.Fatalf("/v1/models: %v %v", err, ids)
		}
		if after := loadsInLog(r); after != before {
			t.Fatalf("Ollama started %d runners during the /v1 requests: it reloaded a model behind the manager", after-before)
		}
	})
	step("management API through the client", func(t *testing.T) {
		c, err := client.Dial(ctx, r.http.URL, "")
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.Snapshot(ctx)
		if err != nil || !st.OllamaUp || len(st.Models) != 3 {
			t.Fatalf("status: %v %+v", err, st)
		}
		ms, err := c.Models(ctx)
		if err != nil || len(ms) != 3 {
			t.Fatalf("models: %v %d", err, len(ms))
		}
		ch, err := c.BestModelForTask(ctx, "code_generation", "")
		if err != nil || ch.Model != "tiny-coder:latest" || ch.Reason == "" {
			t.Fatalf("best: %v %+v", err, ch)
		}
		if err := c.Unload(ctx, "tiny-chat"); err != nil {
			t.Fatal(err)
		}
		if res, err := c.Load(ctx, "tiny-chat", "test"); err != nil || res.Already {
			t.Fatalf("load: %v %+v", err, res)
		}
		if err := c.SetPinned(ctx, "tiny-chat:latest", true); err != nil {
			t.Fatal(err)
		}
		// SetPinned returns before the next snapshot is published.
		pinned := false
		for deadline := time.Now().Add(2 * time.Second); !pinned && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			v, _ := r.m.Snapshot().Model("tiny-chat:latest")
			pinned = v.Pinned
		}
		if !pinned {
			t.Fatal("not pinned")
		}
		if err := c.SetPinned(ctx, "tiny-chat:latest", false); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			err  error
			want error
		}{
			{"unknown task", func() error { _, err := c.BestModelForTask(ctx, "juggling", ""); return err }(), manager.ErrUnknownTask},
			{"unknown role", func() error { _, err := c.BestModelForTask(ctx, "chat", "juggler"); return err }(), manager.ErrUnknownRole},
			{"unknown model", func() error { _, err := c.Load(ctx, "nope:1b", "test"); return err }(), manager.ErrModelUnknown},
		} {
			if !errors.Is(tc.err, tc.want) {
				t.Errorf("%s: %v, want errors.Is %v", tc.name, tc.err, tc.want)
			}
		}
		if _, err := client.Dial(ctx, "127.0.0.1:1", ""); !errors.Is(err, client.ErrNotRunning) {
			t.Errorf("dial nothing: %v", err)
		}
	})
	step("events", func(t *testing.T) {
		ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ectx, http.MethodGet, r.http.URL+"/keeper/v1/events?kinds=loaded,unloaded", nil)
		resp, err := r.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() {
			// The subscription is live once the headers came.
			if err := r.m.Unload(ectx, "tiny-chat"); err != nil {
				t.Errorf("unload: %v", err)
			}
			if _, err := r.m.Load(ectx, "tiny-chat", "test"); err != nil {
				t.Errorf("load: %v", err)
			}
		})
		var kinds []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() && len(kinds) < 2 {
			if k, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				kinds = append(kinds, k)
			}
		}
		if !slices.Equal(kinds, []string{"unloaded", "loaded"}) {
			t.Fatalf("events %v, want [unloaded loaded]", kinds)
		}
	})
	step("bad input", func(t *testing.T) { badInput(t, r) })
}

// badInput sends what a confused or hostile client would; each gets a
// clear error and the server keeps serving.
func badInput(t *testing.T, r *rig) {
	big := `{"model":"tiny-chat","prompt":"` + strings.Repeat("x", 33<<20) + `"}`
	cases := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		contains                 string
	}{
		{"malformed JSON native", "POST", "/api/chat", `{"model":`, nil, 400, "malformed JSON"},
		{"malformed JSON v1", "POST", "/v1/chat/completions", `[1,2`, nil, 400, "malformed JSON"},
		{"malformed JSON keeper", "POST", "/keeper/v1/best", `{"task":}`, nil, 400, "malformed JSON"},
		{"unknown field keeper", "POST", "/keeper/v1/best", `{"taks":"chat"}`, nil, 400, "unknown field"},
		{"no model", "POST", "/api/generate", `{"prompt":"x"}`, nil, 400, "model is required"},
		{"unknown model native", "POST", "/api/generate", `{"model":"nope:7b","prompt":"x"}`, nil, 404, "not found"},
		{"unknown model v1", "POST", "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`, nil, 404, "not found"},
		{"unknown model keeper", "POST", "/keeper/v1/models/nope:7b/load", ``, nil, 404, "model_not_found"},
		{"unknown task alias", "POST", "/api/generate", `{"model":"auto:juggling","prompt":"x"}`, nil, 400, "juggling"},
		{"unknown task keeper", "POST", "/keeper/v1/best", `{"task":"juggling"}`, nil, 400, "unknown_task"},
		{"missing task", "POST", "/keeper/v1/best", `{}`, nil, 400, "task"},
		{"unknown action", "POST", "/keeper/v1/models/tiny-chat/explode", ``, nil, 404, "action"},
		{"unknown endpoint", "GET", "/keeper/v1/nothing", ``, nil, 404, "no such endpoint"},
		{"oversized native", "POST", "/api/generate", big, nil, 413, "larger than"},
		{"oversized v1", "POST", "/v1/completions", big, nil, 413, "larger than"},
		{"oversized pass-through", "POST", "/api/show", big, nil, 413, "larger than"},
		{"oversized keeper", "POST", "/keeper/v1/best", `{"task":"` + strings.Repeat("x", 2<<20) + `"}`, nil, 413, "too_large"},
		{"unmanaged inference endpoint", "POST", "/v1/images/generations", `{"model":"tiny-chat","prompt":"x"}`, nil, 501, "bypass the VRAM budget"},
		{"foreign origin", "GET", "/keeper/v1/status", ``, map[string]string{"Origin": "https://evil.example"}, 403, "origin"},
		{"rebound host", "GET", "/api/tags", ``, map[string]string{"Host": "evil.example:11435"}, 403, "host"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, r.http.URL+tc.path, strings.NewReader(tc.body))
			for k, v := range tc.header {
				if k == "Host" {
					req.Host = v
				}
				req.Header.Set(k, v)
			}
			resp, err := r.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.contains) {
				t.Fatalf("%s %s: %d %s, want %d containing %q", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.contains)
			}
			var e map[string]any
			if err := json.Unmarshal(b, &e); err != nil || e["error"] == nil {
				t.Fatalf("not a JSON error: %s", b)
			}
			// Still serving.
			if _, err := r.client.Version(context.Background()); err != nil {
				t.Fatalf("server stopped answering: %v", err)
			}
		})
	}

	t.Run("token", func(t *testing.T) {
		s := server.New(r.m, r.ollama.URL, server.Options{Token: "s3cret"})
		hs := httptest.NewServer(s.Handler())
		defer hs.Close()
		for _, tc := range []struct {
			auth   string
			status int
		}{{"", 401}, {"Bearer wrong", 401}, {"s3cret", 401}, {"Bearer s3cret", 200}} {
			for _, path := range []string{"/keeper/v1/status", "/api/tags", "/v1/models"} {
				req, _ := http.NewRequest("GET", hs.URL+path, nil)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				resp, err := hs.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || tc.status == 401 && !strings.Contains(string(b), "token") {
					t.Errorf("%s with %q: %d %s", path, tc.auth, resp.StatusCode, b)
				}
			}
		}
		if _, err := client.Dial(context.Background(), hs.URL, "wrong"); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("dial with a wrong token: %v", err)
		}
		c, err := client.Dial(context.Background(), hs.URL, "s3cret")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Models(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
