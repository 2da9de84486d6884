package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
)

// TestSmuggledLoadOptions: a request that asks for another context length
// (in any key case, duplicated, or behind a folded key) does not make
// Ollama reload the model behind the manager: /api/ps keeps the manager's
// num_ctx. The same body sent straight to Ollama does reload it, which
// shows the check can fail.
func TestSmuggledLoadOptions(t *testing.T) {
	long := llama(2, 64)
	long.ContextLength = 65536 // so Ollama does not cap 32768 to the trained length
	r := newRig(t, map[string]ggufgen.Spec{"long-chat": long}, manager.Options{Settings: manager.Settings{NumCtx: 4096}}, server.Options{})
	ctx := ctxFor(t, 3*time.Minute)
	if _, err := r.m.Load(ctx, "long-chat", "test"); err != nil {
		t.Fatal(err)
	}
	atCtx := func(t *testing.T) int {
		t.Helper()
		for _, p := range r.ollama.Running(t) {
			if p.Name == "long-chat:latest" {
				return p.ContextLength
			}
		}
		t.Fatal("long-chat is not loaded")
		return 0
	}
	if n := atCtx(t); n != 4096 {
		t.Fatalf("manager loaded at %d, want 4096", n)
	}
	post := func(t *testing.T, base, path, body string) {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", path, body, resp.StatusCode, b)
		}
	}
	bodies := []struct{ path, body string }{
		{"/api/generate", `{"model":"long-chat","prompt":"hi","stream":false,"Options":{"num_ctx":32768,"num_predict":2}}`},
		{"/api/generate", `{"model":"long-chat","prompt":"hi","stream":false,"OPTIONS":{"num_ctx":32768,"num_predict":2}}`},
		{"/api/generate", `{"model":"long-chat","prompt":"hi","stream":false,"options":{"num_predict":2},"oPtIoNs":{"num_ctx":32768}}`},
		{"/api/chat", `{"model":"long-chat","stream":false,"messages":[{"role":"user","content":"hi"}],"option` + "\u017F" + `":{"num_ctx":32768,"num_predict":2}}`},
		{"/api/embed", `{"model":"long-chat","input":"hi","Options":{"num_ctx":32768}}`},
	}
	before := loadsInLog(r)
	for _, b := range bodies {
		post(t, r.http.URL, b.path, b.body)
		if n := atCtx(t); n != 4096 {
			t.Fatalf("after %s %s through the proxy: Ollama runs long-chat at num_ctx %d, the manager loaded it at 4096", b.path, b.body, n)
		}
	}
	if after := loadsInLog(r); after != before {
		t.Fatalf("Ollama started %d runners: it reloaded the model behind the manager", after-before)
	}
	// Control: straight to Ollama, the first body reloads the model.
	post(t, r.ollama.URL.String(), bodies[0].path, bodies[0].body)
	if n := atCtx(t); n != 32768 {
		t.Fatalf("control: straight to Ollama the model runs at %d; the smuggled option should have reached it", n)
	}
}

// TestProxyKeepsLoadedContext: a model loaded at a context other than the
// global one (its own from the config, or a load's context_length) serves
// proxied requests at that context, whatever num_ctx they carry, and
// Ollama never reloads it.
func TestProxyKeepsLoadedContext(t *testing.T) {
	// Two different files: Ollama keeps one runner per file, whatever the
	// names.
	own, asked := llama(2, 64), llama(3, 64)
	own.ContextLength, asked.ContextLength = 65536, 65536
	r := newRig(t, map[string]ggufgen.Spec{"own-ctx": own, "asked-ctx": asked}, manager.Options{Settings: manager.Settings{
		NumCtx: 4096, MaxLoaded: 2, Contexts: map[string]int{"own-ctx:latest": 8192},
	}}, server.Options{})
	ctx := ctxFor(t, 3*time.Minute)
	if _, err := r.m.Load(ctx, "own-ctx", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.m.LoadAt(ctx, "asked-ctx", 16384, "test"); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"own-ctx:latest": 8192, "asked-ctx:latest": 16384}
	check := func(t *testing.T, after string) {
		t.Helper()
		got := map[string]int{}
		for _, p := range r.ollama.Running(t) {
			got[p.Name] = p.ContextLength
		}
		for name, n := range want {
			if got[name] != n {
				t.Fatalf("%s: Ollama runs %s at num_ctx %d, want %d (running: %v)", after, name, got[name], n, got)
			}
		}
	}
	check(t, "after the loads")
	before := loadsInLog(r)
	for _, body := range []string{
		`{"model":"own-ctx","prompt":"hi","stream":false,"options":{"num_predict":2}}`,
		`{"model":"own-ctx","prompt":"hi","stream":false,"options":{"num_ctx":4096,"num_predict":2}}`,
		`{"model":"asked-ctx","prompt":"hi","stream":false,"options":{"num_predict":2}}`,
		`{"model":"asked-ctx","prompt":"hi","stream":false,"options":{"num_ctx":2048,"num_predict":2}}`,
	} {
		resp, err := http.Post(r.http.URL+"/api/generate", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", body, resp.StatusCode, b)
		}
		check(t, "after "+body)
	}
	if after := loadsInLog(r); after != before {
		t.Fatalf("Ollama started %d runners: a proxied request reloaded a model", after-before)
	}
}
