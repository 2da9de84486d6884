package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ollama/ollama/types/model"

	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
)

// anyKeeper knows every model name and records the names it is asked for.
type anyKeeper struct {
	*fakeKeeper
	mu    sync.Mutex
	names []string
}

func (k *anyKeeper) LoadAt(_ context.Context, name string, _ int, _ string) (manager.LoadResult, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.names = append(k.names, name)
	return manager.LoadResult{Model: name}, nil
}

func (k *anyKeeper) take() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := k.names
	k.names = nil
	return out
}

// FuzzModelPath: any model name Ollama accepts reaches the manager exactly
// as the client sent it, slashes, colons and odd characters included; any
// other name gets a clean answer, never a crash.
func FuzzModelPath(f *testing.F) {
	for _, s := range []string{
		"llama3", "qwen2.5-coder:7b", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
		"registry.ollama.ai/library/mistral:latest", "a/b/c/d:e", "x%2Fy", "名前:latest",
		"../etc/passwd", "a//b", "a/./b:c", "load", "m/load", " spaced name ", "a?b#c",
	} {
		f.Add(s)
	}
	k := &anyKeeper{fakeKeeper: &fakeKeeper{}}
	hs := httptest.NewServer(server.New(k, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, server.Options{}).Handler())
	defer hs.Close()
	c, err := client.Dial(context.Background(), hs.URL, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		_, err := c.Load(context.Background(), name, "fuzz")
		got := k.take()
		if !model.ParseName(name).IsValid() || strings.ContainsAny(name, "?#") {
			return // not a model Ollama would have; any clean answer will do
		}
		if err != nil || !slices.Equal(got, []string{name}) {
			t.Fatalf("load %q: the manager was asked for %q (%v)", name, got, err)
		}
	})
}

// managementBodies are the management API's endpoints that read a body.
var managementBodies = []struct{ method, path string }{
	{"POST", "/keeper/v1/best"},
	{"POST", "/keeper/v1/settings"},
	{"POST", "/keeper/v1/models/a/b:c/load"},
	{"POST", "/keeper/v1/models/a/b:c/unload"},
	{"POST", "/keeper/v1/models/a/b:c/pin"},
	{"POST", "/keeper/v1/models/a/b:c/unpin"},
	{"POST", "/keeper/v1/pause"},
	{"POST", "/keeper/v1/resume"},
	{"POST", "/keeper/v1/ollama/start"},
	{"POST", "/keeper/v1/window"},
	{"POST", "/keeper/v1/yield"},
	{"POST", "/keeper/v1/restore"},
	{"POST", "/keeper/v1/plan"},
}

// FuzzManagementBodies: whatever body comes to a management endpoint, the
// answer is a JSON object, an error one with a message and a code unless
// the call worked, and never an internal error.
func FuzzManagementBodies(f *testing.F) {
	seeds := []string{
		`{"task":"chat","role":"assistant"}`, `{"task":"huge"}`, `{"taks":"chat"}`, `{"task":5}`,
		`{"budget":"7GiB","max_loaded":2,"context_length":4096}`, `{"budget":"80%"}`, `{"budget":"-1GiB"}`,
		`{"max_loaded":-3}`, `{"budget":"1e400GiB"}`, ``, `null`, `[]`, `{"task":"chat"} {"x":1}`, "\x00",
		`{"context_length":8192}`, `{"gpu_only":true,"load_timeout":"2m","contexts":{"a/b:c":"auto"}}`,
		`{"model":"a/b:c"}`, `{"model":"a/b:c","context_length":-1}`, `{"task":"chat","role":"jester"}`, `{"model":"x","task":"chat"}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	k := &fakeKeeper{models: map[string]bool{"a/b:c": true}}
	h := server.New(k, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, server.Options{}).Handler()
	f.Fuzz(func(t *testing.T, e uint8, body []byte) {
		ep := managementBodies[int(e)%len(managementBodies)]
		req := httptest.NewRequest(ep.method, ep.path, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusInsufficientStorage {
			t.Fatalf("%s %s with %q: %d %s", ep.method, ep.path, body, rec.Code, rec.Body)
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s with %q: not a JSON object: %s", ep.method, ep.path, body, rec.Body)
		}
		if rec.Code != http.StatusOK && (out["error"] == "" || out["error"] == nil || out["code"] == nil) {
			t.Fatalf("%s %s with %q: %d without a message and code: %s", ep.method, ep.path, body, rec.Code, rec.Body)
		}
	})
}
