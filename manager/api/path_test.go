package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	server "github.com/vramkeeper/vramkeeper/manager/api"
)

// spellings of one path: percent-encoded slashes and letters, encoded
// twice and three times, dot segments, doubled and trailing slashes.
func spellings(p string) []string {
	rest := strings.TrimPrefix(p, "/api/")
	return []string{
		p,
		"/api%2F" + rest,
		"/api%2f" + rest,
		"/%61pi/" + rest,
		fmt.Sprintf("/api/%%%02X%s", rest[0], rest[1:]),
		"/api%252F" + rest,
		"/api%25252F" + rest,
		"/api/./" + rest,
		"/x/../api/" + rest,
		"/x/%2e%2e/api/" + rest,
		"/x%2F..%2Fapi%2F" + rest,
		"//api//" + rest + "/",
		"/../api/" + rest,
	}
}

// rawRequest sends method and the request path exactly as written, over
// a connection of its own, as a hostile client would.
func rawRequest(t *testing.T, base, method, rawPath, auth, body string) (int, string) {
	t.Helper()
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n", method, rawPath, u.Host, len(body))
	if auth != "" {
		head += "Authorization: " + auth + "\r\n"
	}
	if _, err := io.WriteString(c, head+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestEverySpellingOfAnAdminPath: with a token and without allow_admin,
// every spelling of /api/copy, /api/delete and /api/pull is refused and
// never reaches Ollama; a path wrapped in more layers than anyone uses is
// refused as malformed.
func TestEverySpellingOfAnAdminPath(t *testing.T) {
	hs, log := adminRig(t, server.Options{Token: "t"}, http.StatusOK)
	for _, target := range []struct{ method, path, body string }{
		{"POST", "/api/copy", `{"source":"a/b:c","destination":"x"}`},
		{"DELETE", "/api/delete", `{"model":"idle:7b"}`},
		{"POST", "/api/pull", `{"model":"llama3"}`},
		{"POST", "/api/push", `{"model":"me/llama3"}`},
		{"POST", "/api/create", `{"model":"x","from":"a/b:c"}`},
	} {
		for _, p := range spellings(target.path) {
			log.take()
			status, body := rawRequest(t, hs.URL, target.method, p, "Bearer t", target.body)
			if status != http.StatusForbidden || !strings.Contains(body, "allow_admin") {
				t.Errorf("%s %s: %d %s, want 403 naming allow_admin", target.method, p, status, body)
			}
			if got := log.take(); len(got) != 0 {
				t.Errorf("%s %s reached %q", target.method, p, got)
			}
		}
	}
	log.take()
	if status, _ := rawRequest(t, hs.URL, "POST", "/api%2525252Fcopy", "Bearer t", `{}`); status != http.StatusBadRequest {
		t.Errorf("four layers of encoding: %d, want 400", status)
	}
	if got := log.take(); len(got) != 0 {
		t.Errorf("a malformed path reached %q", got)
	}
}

// TestEncodedGenerateThroughTheManager: /api%2Fgenerate is /api/generate
// to Ollama, so it is served like it: the manager loads and holds the
// model, and Ollama gets the manager's model and options, at the decoded
// path.
func TestEncodedGenerateThroughTheManager(t *testing.T) {
	hs, log := adminRig(t, server.Options{Token: "t"}, http.StatusOK)
	for _, p := range spellings("/api/generate") {
		log.take()
		status, body := rawRequest(t, hs.URL, "POST", p, "Bearer t",
			`{"model":"a/b:c","prompt":"hi","options":{"num_ctx":8192,"temperature":0.5}}`)
		if status != http.StatusOK {
			t.Errorf("POST %s: %d %s", p, status, body)
			continue
		}
		calls := log.take()
		i := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "ollama ") })
		if i < 0 || !strings.HasPrefix(calls[i], "ollama POST /api/generate {") ||
			strings.Contains(calls[i], "8192") || !strings.Contains(calls[i], `"keep_alive":-1`) {
			t.Errorf("POST %s: Ollama got %q, want /api/generate pinned by the manager", p, calls)
		}
	}
}

// TestOnlyKnownEndpointsWithAToken: with a token, what the proxy does not
// know is refused, account and alias changes are admin calls, and
// read-only calls pass; without one (loopback, the user's own machine)
// everything passes.
func TestOnlyKnownEndpointsWithAToken(t *testing.T) {
	calls := []struct {
		method, path string
		withToken    int // the status with a token, without allow_admin
	}{
		{"POST", "/api/signout", 403},
		{"POST", "/api/me", 403},
		{"DELETE", "/api/user/keys/abc", 403},
		{"POST", "/api/experimental/aliases", 403},
		{"DELETE", "/api/experimental/aliases", 403},
		{"POST", "/api/newer-endpoint", 403},
		{"POST", "/API/COPY", 403},
		{"GET", "/api/generate", 403},
		{"GET", "/api/experimental/aliases", 200},
		{"GET", "/api/ps", 200},
		{"GET", "/api/version", 200},
		{"HEAD", "/api/version", 200},
		{"GET", "/", 200},
		{"HEAD", "/api/blobs/sha256:abcd", 200},
	}
	for _, opt := range []server.Options{{Token: "t"}, {}} {
		hs, log := adminRig(t, opt, http.StatusOK)
		for _, c := range calls {
			log.take()
			status, body := rawRequest(t, hs.URL, c.method, c.path, "Bearer t", "")
			want := c.withToken
			if opt.Token == "" {
				want = 200
			}
			reached := len(log.take()) > 0
			if status != want || reached != (want == 200) {
				t.Errorf("token %q: %s %s: %d %s, reached Ollama %v; want %d", opt.Token, c.method, c.path, status, body, reached, want)
			}
		}
	}
}

// TestBearerSchemeAnyCase: the scheme is case-insensitive (RFC 9110); the
// token is not.
func TestBearerSchemeAnyCase(t *testing.T) {
	hs, _ := adminRig(t, server.Options{Token: "Tok"}, http.StatusOK)
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"Bearer Tok", 200}, {"bearer Tok", 200}, {"BEARER Tok", 200}, {"  bEaReR   Tok  ", 200},
		{"Bearer tok", 401}, {"BearerTok", 401}, {"Basic Tok", 401}, {"Tok", 401}, {"", 401},
	} {
		if status, body := rawRequest(t, hs.URL, "GET", "/keeper/v1/status", tc.auth, ""); status != tc.want {
			t.Errorf("Authorization %q: %d %s, want %d", tc.auth, status, body, tc.want)
		}
	}
}
