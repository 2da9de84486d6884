package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	server "github.com/vramkeeper/vramkeeper/manager/api"
)

// The endpoints for operators and agents (/metrics, /mcp) pass the same
// checks as the rest of the API: with a token, none or a wrong one is 401
// and the right one in either header passes; without a token, only
// loopback Host names pass; a browser origin is refused either way.
func TestObservabilityEndpointsAreGuarded(t *testing.T) {
	up, _ := url.Parse("http://127.0.0.1:9") // never reached
	withToken := httptest.NewServer(server.New(&fakeKeeper{models: map[string]bool{"a:1b": true}}, up, server.Options{Token: "t"}).Handler())
	defer withToken.Close()
	open := httptest.NewServer(server.New(&fakeKeeper{models: map[string]bool{"a:1b": true}}, up, server.Options{}).Handler())
	defer open.Close()

	for _, path := range guardedPaths {
		for _, tc := range []struct {
			name   string
			srv    *httptest.Server
			header map[string]string
			want   int
		}{
			{"no token", withToken, nil, http.StatusUnauthorized},
			{"wrong token", withToken, map[string]string{"Authorization": "Bearer u"}, http.StatusUnauthorized},
			{"bearer", withToken, map[string]string{"Authorization": "Bearer t"}, http.StatusOK},
			{"x-api-key", withToken, map[string]string{"X-Api-Key": "t"}, http.StatusOK},
			{"a browser origin, with the token", withToken, map[string]string{"Authorization": "Bearer t", "Origin": "https://evil.example"}, http.StatusForbidden},
			{"loopback without a token", open, nil, http.StatusOK},
			{"a rebound DNS name without a token", open, map[string]string{"Host": "evil.example:11435"}, http.StatusForbidden},
		} {
			t.Run(path.name+" "+tc.name, func(t *testing.T) {
				req := path.request(tc.srv.URL)
				for k, v := range tc.header {
					if k == "Host" {
						req.Host = v
						continue
					}
					req.Header.Set(k, v)
				}
				resp, err := tc.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tc.want, b)
				}
				if tc.want == http.StatusOK && !strings.Contains(string(b), path.answers) {
					t.Errorf("the answer lacks %q:\n%.400s", path.answers, b)
				}
			})
		}
	}
}

// guardedPath is one endpoint the guard test calls, and a piece of its
// answer that shows it was served.
type guardedPath struct {
	name    string
	request func(base string) *http.Request
	answers string
}

var guardedPaths = []guardedPath{
	{"GET /metrics", func(base string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
		return req
	}, `vramkeeper_model_loaded{model="a:1b"} 1`},
	{"POST /mcp", func(base string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		return req
	}, `"name":"vramkeeper"`},
}

// Every proxied request that reached Ollama is one sample of how long it
// waited for its model; one refused before (an unknown model) is none.
func TestProxiedRequestWaitIsObserved(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"model":"a:1b","response":"hi","done":true}`)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	hs := httptest.NewServer(server.New(&fakeKeeper{models: map[string]bool{"a:1b": true}}, u, server.Options{}).Handler())
	defer hs.Close()
	for _, model := range []string{"a:1b", "nope:1b", "a:1b"} {
		resp, err := hs.Client().Post(hs.URL+"/api/generate", "application/json",
			strings.NewReader(`{"model":"`+model+`","prompt":"hi","stream":false}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := hs.Client().Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "vramkeeper_request_wait_seconds_count 2\n") {
		t.Errorf("want 2 waits observed:\n%s", grepLines(string(b), "vramkeeper_request_wait_seconds_count"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
