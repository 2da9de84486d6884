package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/estimate"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// fake starts an httptest server running h and a Client for it.
// The manager takes a Client as its Runtime (checked here: the package
// itself does not import the manager).
var _ manager.Runtime = (*Client)(nil)

func fake(t *testing.T, h http.HandlerFunc) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return New(u, nil), srv
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestErrorMapping(t *testing.T) {
	type call func(ctx context.Context, c *Client) error
	show := func(ctx context.Context, c *Client) error { _, err := c.Show(ctx, "ghost"); return err }
	load := func(ctx context.Context, c *Client) error {
		return c.Load(ctx, serving.LoadRequest{Name: "ghost", NumCtx: 2048})
	}
	embed := func(ctx context.Context, c *Client) error {
		return c.Load(ctx, serving.LoadRequest{Name: "ghost", Embedding: true})
	}
	unload := func(ctx context.Context, c *Client) error { return c.Unload(ctx, "ghost") }
	list := func(ctx context.Context, c *Client) error { _, err := c.List(ctx); return err }

	tests := []struct {
		name    string
		handler http.HandlerFunc
		call    call
		want    error    // errors.Is target, nil for "neither sentinel"
		notWant []error  // errors.Is must be false
		msg     []string // substrings of the message
	}{
		{
			name: "show 404",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 404, map[string]string{"error": "model 'ghost' not found"})
			},
			call:    show,
			want:    serving.ErrModelUnknown,
			notWant: []error{serving.ErrUnreachable},
			msg:     []string{`"ghost"`, "not found"},
		},
		{
			name: "load 404 streamed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 404, map[string]string{"error": `model "ghost" not found, try pulling it first`})
			},
			call: load,
			want: serving.ErrModelUnknown,
			msg:  []string{`"ghost"`},
		},
		{
			name: "embed 404",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 404, map[string]string{"error": "model 'ghost' not found"})
			},
			call: embed,
			want: serving.ErrModelUnknown,
		},
		{
			name: "unload 404",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 404, map[string]string{"error": "model 'ghost' not found"})
			},
			call: unload,
			want: serving.ErrModelUnknown,
		},
		{
			name: "not found message with another status",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 400, map[string]string{"error": "model 'ghost' not found"})
			},
			call: show,
			want: serving.ErrModelUnknown,
		},
		{
			name: "error inside a 200 stream",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-ndjson")
				_, _ = io.WriteString(w, `{"error":"model 'ghost' not found"}`+"\n")
			},
			call: load,
			want: serving.ErrModelUnknown,
		},
		{
			name: "load failure mentioning a missing file is not an unknown model",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 500, map[string]string{"error": "llama runner process has terminated: error loading model: file not found"})
			},
			call:    load,
			notWant: []error{serving.ErrModelUnknown, serving.ErrUnreachable},
			msg:     []string{"500", "error loading model"},
		},
		{
			name: "server error keeps status and message",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 500, map[string]string{"error": "model requires more system memory (9 GiB) than is available (4 GiB)"})
			},
			call:    load,
			notWant: []error{serving.ErrModelUnknown, serving.ErrUnreachable},
			msg:     []string{`ollama load "ghost"`, "status 500", "more system memory"},
		},
		{
			name: "busy",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 503, map[string]string{"error": "server busy, please try again.  maximum pending requests exceeded"})
			},
			call:    list,
			notWant: []error{serving.ErrModelUnknown, serving.ErrUnreachable},
			msg:     []string{"status 503", "server busy"},
		},
		{
			name:    "404 on list is not about a model",
			handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			call:    list,
			notWant: []error{serving.ErrModelUnknown, serving.ErrUnreachable},
			msg:     []string{"status 404"},
		},
		{
			name: "unauthorized",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 401, map[string]string{"error": "unauthorized"})
			},
			call:    list,
			notWant: []error{serving.ErrModelUnknown, serving.ErrUnreachable},
			msg:     []string{"unauthorized", "401"},
		},
		{
			name: "connection dropped",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
			},
			call: show,
			want: serving.ErrUnreachable,
			msg:  []string{"unreachable"},
		},
		{
			name: "garbage body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "<html>not ollama</html>")
			},
			call:    list,
			notWant: []error{serving.ErrModelUnknown, serving.ErrUnreachable},
			msg:     []string{"ollama list"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fake(t, tt.handler)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := tt.call(ctx, c)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.want)
			}
			for _, nw := range tt.notWant {
				if errors.Is(err, nw) {
					t.Errorf("err = %v, must not be %v", err, nw)
				}
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err = %q, want it to contain %q", err, m)
				}
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	// A server that was started and closed: its port refuses connections.
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	u, _ := url.Parse(srv.URL)
	c := New(u, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	calls := map[string]func() error{
		"version": func() error { _, err := c.Version(ctx); return err },
		"list":    func() error { _, err := c.List(ctx); return err },
		"show":    func() error { _, err := c.Show(ctx, "m"); return err },
		"load":    func() error { return c.Load(ctx, serving.LoadRequest{Name: "m"}) },
		"unload":  func() error { return c.Unload(ctx, "m") },
		"running": func() error { _, err := c.Running(ctx); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, serving.ErrUnreachable) {
				t.Fatalf("err = %v, want ErrUnreachable", err)
			}
			want := "ollama at " + srv.URL + " unreachable"
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to contain %q", err, want)
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	// hang answers nothing until the test ends.
	done := make(chan struct{})
	c, srv := fake(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	})
	// Registered after fake's srv.Close, so it runs first and frees the handlers.
	t.Cleanup(func() { close(done) })

	t.Run("version deadline is unreachable", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := c.Version(ctx)
		if !errors.Is(err, serving.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrUnreachable and DeadlineExceeded", err)
		}
	})
	t.Run("load cancelled is the caller's doing", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := c.Load(ctx, serving.LoadRequest{Name: "big"})
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, serving.ErrUnreachable) {
			t.Fatalf("err = %v, want DeadlineExceeded and not ErrUnreachable", err)
		}
	})
	t.Run("client timeout is unreachable", func(t *testing.T) {
		u, _ := url.Parse(srv.URL)
		c := New(u, &http.Client{Timeout: 100 * time.Millisecond})
		_, err := c.List(context.Background())
		if !errors.Is(err, serving.ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
	})
}

func TestList(t *testing.T) {
	mod := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/tags" {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, 200, map[string]any{"models": []map[string]any{
			{"name": "qwen2.5:7b", "model": "qwen2.5:7b", "size": 4683087332, "digest": "abc", "modified_at": mod},
			{"name": "nomic-embed-text:latest", "size": 274302450, "digest": "def", "modified_at": mod},
		}})
	})
	got, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []serving.Installed{
		{Name: "qwen2.5:7b", Digest: "abc", SizeBytes: 4683087332, ModifiedAt: mod},
		{Name: "nomic-embed-text:latest", Digest: "def", SizeBytes: 274302450, ModifiedAt: mod},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List =\n%+v\nwant\n%+v", got, want)
	}
}

// A non-verbose answer with a truncated array (per-layer KV heads) is
// asked for again verbosely, since the estimator needs the array.
func TestShowVerboseWhenTruncated(t *testing.T) {
	var verbose []bool
	c, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		v := req["verbose"] == true
		verbose = append(verbose, v)
		kv := `null`
		if v {
			kv = `[8, 8, 4, 4]`
		}
		_, _ = io.WriteString(w, `{"model_info": {"general.architecture": "llama", "llama.attention.head_count_kv": `+kv+`,
			"tokenizer.ggml.tokens": null}, "details": {"family": "llama"}}`)
	})
	d, err := c.Show(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(verbose) != 2 || verbose[0] || !verbose[1] {
		t.Fatalf("requests verbose = %v, want [false true]", verbose)
	}
	if kv, ok := d.Meta.KV["llama.attention.head_count_kv"].([]any); !ok || len(kv) != 4 {
		t.Fatalf("head_count_kv = %#v", d.Meta.KV["llama.attention.head_count_kv"])
	}
}

func TestShow(t *testing.T) {
	var gotReq map[string]any
	c, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/show" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&gotReq)
		// Shaped like Ollama 0.17's answer for a vision model.
		_, _ = io.WriteString(w, `{
			"parameters": "num_ctx                        8192\nstop                           \"<|im_end|>\"",
			"details": {"parent_model": "", "format": "gguf", "family": "qwen2", "families": ["qwen2", "clip"],
			            "parameter_size": "7.6B", "quantization_level": "Q4_K_M"},
			"model_info": {"general.architecture": "qwen2", "qwen2.block_count": 28,
			               "qwen2.attention.head_count_kv": 4, "qwen2.context_length": 32768},
			"projector_info": {"general.architecture": "clip", "clip.vision.block_count": 32},
			"tensors": [{"name": "token_embd.weight", "type": "Q4_K", "shape": [3584, 152064]},
			            {"name": "blk.0.attn_norm.weight", "type": "F32", "shape": [3584]}],
			"capabilities": ["completion", "vision", "tools"],
			"modified_at": "2026-01-02T03:04:05Z"
		}`)
	})
	got, err := c.Show(context.Background(), "qwen2.5vl:7b")
	if err != nil {
		t.Fatal(err)
	}
	if gotReq["verbose"] == true || gotReq["model"] != "qwen2.5vl:7b" {
		t.Errorf("request = %v, want model without verbose (nothing was truncated)", gotReq)
	}
	want := serving.Details{
		Name:          "qwen2.5vl:7b",
		Family:        "qwen2",
		Families:      []string{"qwen2", "clip"},
		Format:        "gguf",
		ParameterSize: "7.6B",
		Quantization:  "Q4_K_M",
		Capabilities:  []string{"completion", "vision", "tools"},
		NumCtx:        8192,
		Meta: estimate.Model{
			Arch: "qwen2",
			KV: map[string]any{
				"general.architecture": "qwen2", "qwen2.block_count": float64(28),
				"qwen2.attention.head_count_kv": float64(4), "qwen2.context_length": float64(32768),
			},
			Tensors: []estimate.Tensor{
				{Name: "token_embd.weight", Type: "Q4_K", Shape: []uint64{3584, 152064}},
				{Name: "blk.0.attn_norm.weight", Type: "F32", Shape: []uint64{3584}},
			},
			ProjectorKV: map[string]any{"general.architecture": "clip", "clip.vision.block_count": float64(32)},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Show =\n%#v\nwant\n%#v", got, want)
	}
}

func TestNumCtxParam(t *testing.T) {
	tests := []struct {
		params string
		want   int
	}{
		{"", 0},
		{"num_ctx 4096", 4096},
		{"num_ctx                        8192", 8192},
		{"stop \"<|im_end|>\"\nnum_ctx    32768\ntemperature 0.7", 32768},
		{"num_ctx 1e+06", 1000000}, // %#v of a float64 from JSON
		{"num_ctx 131072", 131072},
		{"num_ctx 0.5", 0},
		{"num_ctx -1", 0},
		{"num_ctx_extra 4096", 0},
		{"temperature 0.7\nnum_predict 100", 0},
		{"num_ctx \"2048\"", 2048},
	}
	for _, tt := range tests {
		if got := numCtxParam(tt.params); got != tt.want {
			t.Errorf("numCtxParam(%q) = %d, want %d", tt.params, got, tt.want)
		}
	}
}

func TestRunning(t *testing.T) {
	exp := time.Date(2318, 1, 1, 0, 0, 0, 0, time.UTC)
	c, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"models": []map[string]any{
			{"name": "a:latest", "model": "a:latest", "size": 1000, "size_vram": 600, "digest": "d1",
				"context_length": 8192, "expires_at": exp},
			{"name": "b:1b", "size": -5, "size_vram": 0, "digest": "d2", "context_length": 4096, "expires_at": exp},
		}})
	})
	got, err := c.Running(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []serving.Running{
		{Name: "a:latest", Digest: "d1", SizeBytes: 1000, VRAMBytes: 600, ContextLength: 8192, ExpiresAt: exp},
		{Name: "b:1b", Digest: "d2", SizeBytes: 0, VRAMBytes: 0, ContextLength: 4096, ExpiresAt: exp},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Running =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoadRequests(t *testing.T) {
	tests := []struct {
		name     string
		req      serving.LoadRequest
		wantPath string
		wantBody map[string]any // keys that must be present with these values
		absent   []string
	}{
		{
			name:     "generate with num_ctx",
			req:      serving.LoadRequest{Name: "m", NumCtx: 8192},
			wantPath: "/api/generate",
			wantBody: map[string]any{"model": "m", "prompt": "", "keep_alive": float64(-1),
				"options": map[string]any{"num_ctx": float64(8192)}},
		},
		{
			name:     "generate with the model's own context",
			req:      serving.LoadRequest{Name: "m"},
			wantPath: "/api/generate",
			wantBody: map[string]any{"model": "m", "keep_alive": float64(-1), "options": map[string]any{}},
		},
		{
			name:     "embedding model",
			req:      serving.LoadRequest{Name: "e", NumCtx: 512, Embedding: true},
			wantPath: "/api/embed",
			wantBody: map[string]any{"model": "e", "keep_alive": float64(-1), "input": nil,
				"options": map[string]any{"num_ctx": float64(512)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			var body map[string]any
			c, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
				path = r.URL.Path
				_ = json.NewDecoder(r.Body).Decode(&body)
				if r.URL.Path == "/api/embed" {
					writeJSON(w, 200, map[string]any{"model": "e", "embeddings": [][]float32{}})
					return
				}
				w.Header().Set("Content-Type", "application/x-ndjson")
				_, _ = io.WriteString(w, `{"model":"m","done":true,"done_reason":"load"}`+"\n")
			})
			if err := c.Load(context.Background(), tt.req); err != nil {
				t.Fatal(err)
			}
			if path != tt.wantPath {
				t.Errorf("path = %s, want %s", path, tt.wantPath)
			}
			for k, v := range tt.wantBody {
				if got, ok := body[k]; !ok || !reflect.DeepEqual(got, v) {
					t.Errorf("body[%q] = %#v (present %v), want %#v; body %v", k, got, ok, v, body)
				}
			}
		})
	}
}

// fakeOllama keeps a set of loaded models; unload removes one after a few
// polls of /api/ps, as the real scheduler does a moment after answering.
type fakeOllama struct {
	mu          sync.Mutex
	loaded      map[string]int // name -> polls left before it goes; -1: never
	unloadCalls int
	keepAlive   []any
}

func (f *fakeOllama) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/api/generate":
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.unloadCalls++
		f.keepAlive = append(f.keepAlive, req["keep_alive"])
		_, _ = io.WriteString(w, `{"done":true,"done_reason":"unload"}`+"\n")
	case "/api/ps":
		var models []map[string]any
		for name, left := range f.loaded {
			models = append(models, map[string]any{"name": name, "size": 1})
			if left > 0 {
				f.loaded[name] = left - 1
			}
			if left == 0 {
				delete(f.loaded, name)
			}
		}
		writeJSON(w, 200, map[string]any{"models": models})
	default:
		http.NotFound(w, r)
	}
}

func TestUnload(t *testing.T) {
	tests := []struct {
		name       string
		loaded     map[string]int
		unload     string
		timeout    time.Duration
		wantErr    error
		minResends int
	}{
		{name: "gone after a few polls", loaded: map[string]int{"m:latest": 3, "other:latest": -1}, unload: "m", timeout: 5 * time.Second},
		{name: "not loaded", loaded: map[string]int{"other:latest": -1}, unload: "m", timeout: 5 * time.Second},
		{name: "tag given, case differs", loaded: map[string]int{"m:7b": 1}, unload: "M:7B", timeout: 5 * time.Second},
		{
			name: "never goes: ctx ends, request repeated", loaded: map[string]int{"m:latest": -1}, unload: "m",
			timeout: 300 * time.Millisecond, wantErr: context.DeadlineExceeded, minResends: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeOllama{loaded: tt.loaded}
			srv := httptest.NewServer(f)
			t.Cleanup(srv.Close)
			u, _ := url.Parse(srv.URL)
			c := New(u, nil)
			c.pollEvery, c.resendEvery = 10*time.Millisecond, 50*time.Millisecond

			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			err := c.Unload(ctx, tt.unload)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Unload = %v, want %v", err, tt.wantErr)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.unloadCalls < 1+tt.minResends {
				t.Errorf("unload requests = %d, want at least %d", f.unloadCalls, 1+tt.minResends)
			}
			for _, ka := range f.keepAlive {
				// api.Duration{0} marshals as "0s", which the server reads as 0.
				if ka != "0s" {
					t.Errorf("keep_alive = %#v, want \"0s\"", ka)
				}
			}
			if tt.wantErr == nil {
				if _, still := f.loaded["m:latest"]; still && tt.loaded["m:latest"] >= 0 {
					t.Errorf("returned while m:latest still listed")
				}
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"", "http://127.0.0.1:11434"},
		{"0.0.0.0", "http://0.0.0.0:11434"},
		{"gpu-box:8080", "http://gpu-box:8080"},
		{"http://gpu-box", "http://gpu-box:80"},
		{"https://ollama.example.com", "https://ollama.example.com:443"},
		{"http://[::1]:1234/prefix", "http://[::1]:1234/prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv("OLLAMA_HOST", tt.env)
			if got := FromEnv().URL().String(); got != tt.want {
				t.Errorf("FromEnv with OLLAMA_HOST=%q: %s, want %s", tt.env, got, tt.want)
			}
		})
	}
}

func TestSameModel(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"m:latest", "m", true},
		{"m:latest", "M", true},
		{"m:7b", "m", false},
		{"library/m:7b", "m:7b", true},
		{"registry.ollama.ai/library/m:latest", "m", true},
		{"hf.co/u/m:Q4_K_M", "m:Q4_K_M", false},
		{"a", "b", false},
	}
	for _, tt := range tests {
		if got := sameModel(tt.a, tt.b); got != tt.want {
			t.Errorf("sameModel(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
