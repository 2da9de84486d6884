package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
)

// Hostile and broken clients against the real Ollama (issue 20): each case
// is a reproduction from an adversarial run, and what the client must get.

// serveReal serves r's server the way `vramkeeper serve` does (Serve's
// connection deadlines included) on a port of its own, until the test ends.
func serveReal(t *testing.T, s *server.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeListener(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// TestEncodedPathsAgainstRealOllama: with a token and without allow_admin,
// no spelling of /api/copy or /api/delete changes what Ollama has, and
// /api%2Fgenerate with its own num_ctx is loaded by the manager at the
// manager's context, as /api/generate is.
func TestEncodedPathsAgainstRealOllama(t *testing.T) {
	r := newRig(t, map[string]ggufgen.Spec{"tiny-chat": llama(2, 64), "tiny-coder": llama(2, 128)},
		manager.Options{Settings: manager.Settings{NumCtx: 1024}}, server.Options{Token: "t"})
	ctx := ctxFor(t, 2*time.Minute)
	for _, p := range spellings("/api/copy") {
		if status, body := rawRequest(t, r.http.URL, "POST", p, "Bearer t", `{"source":"tiny-chat","destination":"stolen"}`); status != http.StatusForbidden {
			t.Errorf("POST %s: %d %s, want 403", p, status, body)
		}
	}
	for _, p := range spellings("/api/delete") {
		if status, body := rawRequest(t, r.http.URL, "DELETE", p, "Bearer t", `{"model":"tiny-coder"}`); status != http.StatusForbidden {
			t.Errorf("DELETE %s: %d %s, want 403", p, status, body)
		}
	}
	for _, p := range spellings("/api/pull") {
		if status, body := rawRequest(t, r.http.URL, "POST", p, "Bearer t", `{"model":"tiny-chat"}`); status != http.StatusForbidden {
			t.Errorf("POST %s: %d %s, want 403", p, status, body)
		}
	}
	list, err := r.ollama.Client.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list.Models {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"tiny-chat:latest", "tiny-coder:latest"}) {
		t.Errorf("Ollama has %v after the refused calls, want the two models as they were", names)
	}

	status, body := rawRequest(t, r.http.URL, "POST", "/api%2Fgenerate", "Bearer t",
		`{"model":"tiny-chat","prompt":"hi","stream":false,"options":{"num_ctx":8192,"num_predict":2}}`)
	var g struct {
		Model string `json:"model"`
		Done  bool   `json:"done"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &g) != nil || !g.Done {
		t.Fatalf("POST /api%%2Fgenerate: %d %s", status, body)
	}
	ps := r.ollama.Running(t)
	v, _ := r.m.Snapshot().Lookup("tiny-chat")
	if len(ps) != 1 || ps[0].ContextLength != 1024 || !v.Loaded || v.LoadedCtx != 1024 {
		t.Errorf("after /api%%2Fgenerate: /api/ps %+v, manager: loaded %v at %d; want it loaded by the manager at 1024 tokens",
			ps, v.Loaded, v.LoadedCtx)
	}
}
