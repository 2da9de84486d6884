package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	server "github.com/vramkeeper/vramkeeper/manager/api"
)

// callLog is shared by the fake manager and the fake Ollama, so a test sees
// the order in which they were called.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *callLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.calls
	l.calls = nil
	return out
}

// adminKeeper is the fake manager with its unloads and refreshes logged.
type adminKeeper struct {
	*fakeKeeper
	log *callLog
}

func (k adminKeeper) Unload(ctx context.Context, name string) error {
	k.log.add("manager unload " + name)
	return k.fakeKeeper.Unload(ctx, name)
}

func (k adminKeeper) Refresh(context.Context) error {
	k.log.add("manager refresh")
	return nil
}

// adminRig is a fake Ollama that answers admin calls with status and logs
// them, behind a server with the given options.
func adminRig(t *testing.T, opt server.Options, status int) (*httptest.Server, *callLog) {
	t.Helper()
	log := &callLog{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		log.add("ollama " + r.Method + " " + r.URL.Path + " " + string(b))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, `{"status":"success"}`)
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	k := adminKeeper{&fakeKeeper{models: map[string]bool{"a/b:c": true, "idle:7b": false}}, log}
	hs := httptest.NewServer(server.New(k, u, opt).Handler())
	t.Cleanup(hs.Close)
	return hs, log
}

func TestAdminEndpointsByChoice(t *testing.T) {
	admin := []struct{ method, path, body string }{
		{"DELETE", "/api/delete", `{"model":"idle:7b"}`},
		{"POST", "/api/pull", `{"model":"llama3"}`},
		{"POST", "/api/push", `{"model":"me/llama3"}`},
		{"POST", "/api/create", `{"model":"mine","from":"llama3"}`},
		{"POST", "/api/copy", `{"source":"llama3","destination":"copy"}`},
		{"POST", "/api/blobs/sha256:abcd", `GGUF...`},
		{"POST", "/api/delete", `{"model":"idle:7b"}`}, // a method Ollama may accept one day
	}
	harmless := []struct{ method, path string }{
		{"GET", "/api/tags"}, {"HEAD", "/api/blobs/sha256:abcd"}, {"GET", "/api/version"},
	}
	cases := []struct {
		name   string
		opt    server.Options
		header string
		allow  bool
	}{
		{"loopback without a token: the user's own machine", server.Options{}, "", true},
		{"token: refused", server.Options{Token: "t"}, "Bearer t", false},
		{"token and allow_admin", server.Options{Token: "t", AllowAdmin: true}, "Bearer t", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs, log := adminRig(t, tc.opt, http.StatusOK)
			do := func(method, path, body string) (int, string) {
				req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := hs.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, string(b)
			}
			for _, a := range admin {
				log.take()
				status, body := do(a.method, a.path, a.body)
				reached := slices.ContainsFunc(log.take(), func(c string) bool { return strings.HasPrefix(c, "ollama ") })
				if tc.allow && (status != 200 || !reached) {
					t.Errorf("%s %s: %d %s, reached Ollama %v; want it passed", a.method, a.path, status, body, reached)
				}
				if !tc.allow && (status != 403 || reached || !strings.Contains(body, "allow_admin")) {
					t.Errorf("%s %s: %d %s, reached Ollama %v; want 403 naming allow_admin", a.method, a.path, status, body, reached)
				}
			}
			for _, h := range harmless {
				if status, body := do(h.method, h.path, ""); status != 200 {
					t.Errorf("%s %s: %d %s; read-only calls always pass", h.method, h.path, status, body)
				}
			}
		})
	}
}

// TestAdminKeepsTableTrue: a delete unloads through the manager before
// Ollama deletes, and the catalogue is refreshed before the client has
// its answer; pulls, creates and copies refresh when Ollama says they
// worked, and nothing is refreshed after a failure.
func TestAdminKeepsTableTrue(t *testing.T) {
	cases := []struct {
		name         string
		method, path string
		body         string
		status       int
		want         []string
	}{
		{"delete a loaded model", "DELETE", "/api/delete", `{"model":"a/b:c"}`, 200,
			[]string{"manager unload a/b:c", `ollama DELETE /api/delete {"model":"a/b:c"}`, "manager refresh"}},
		{"delete by the old name field", "DELETE", "/api/delete", `{"name":"a/b:c"}`, 200,
			[]string{"manager unload a/b:c", `ollama DELETE /api/delete {"name":"a/b:c"}`, "manager refresh"}},
		{"delete an idle model", "DELETE", "/api/delete", `{"model":"idle:7b"}`, 200,
			[]string{`ollama DELETE /api/delete {"model":"idle:7b"}`, "manager refresh"}},
		{"delete fails in Ollama", "DELETE", "/api/delete", `{"model":"idle:7b"}`, 404,
			[]string{`ollama DELETE /api/delete {"model":"idle:7b"}`}},
		{"pull", "POST", "/api/pull", `{"model":"x"}`, 200, []string{`ollama POST /api/pull {"model":"x"}`, "manager refresh"}},
		{"create", "POST", "/api/create", `{"model":"x"}`, 200, []string{`ollama POST /api/create {"model":"x"}`, "manager refresh"}},
		{"copy", "POST", "/api/copy", `{"source":"x"}`, 200, []string{`ollama POST /api/copy {"source":"x"}`, "manager refresh"}},
		{"push changes nothing here", "POST", "/api/push", `{"model":"x"}`, 200, []string{`ollama POST /api/push {"model":"x"}`}},
		{"failed pull", "POST", "/api/pull", `{"model":"x"}`, 500, []string{`ollama POST /api/pull {"model":"x"}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs, log := adminRig(t, server.Options{}, tc.status)
			req, _ := http.NewRequest(tc.method, hs.URL+tc.path, strings.NewReader(tc.body))
			resp, err := hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			// Read at once: the refresh must be done by the time the
			// answer is complete.
			if got := log.take(); !slices.Equal(got, tc.want) {
				t.Fatalf("calls %q, want %q", got, tc.want)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want Ollama's %d", resp.StatusCode, tc.status)
			}
		})
	}
}

func TestDeleteBadBody(t *testing.T) {
	hs, log := adminRig(t, server.Options{}, 200)
	for _, body := range []string{``, `{"model":`, `{}`, `[1]`} {
		req, _ := http.NewRequest("DELETE", hs.URL+"/api/delete", strings.NewReader(body))
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("delete %q: %d, want 400", body, resp.StatusCode)
		}
	}
	if got := log.take(); len(got) != 0 {
		t.Errorf("bad deletes reached someone: %q", got)
	}
}
