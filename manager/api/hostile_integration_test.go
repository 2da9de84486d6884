package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/testwait"
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

// TestClientThatStopsReadingAgainstRealOllama: a client starts a long
// streamed generation and stops reading. Its hold on the model ends once
// the socket buffers are full and a write has waited the write deadline
// (it used to last as long as the generation: a request for another model
// waited over 150 s, and a yield did not return). Whatever waited for the
// model goes on then: a yield (it never pulls a model from under a
// request) returns, or a load of another model evicts it.
func TestClientThatStopsReadingAgainstRealOllama(t *testing.T) {
	const writeTimeout = time.Second
	for _, tc := range []struct {
		name string
		// then is what waits for the stalled model; it returns once done.
		then func(ctx context.Context, r *rig) error
		// after is what Ollama must have loaded once it is done.
		after []string
	}{
		{"a yield returns", func(ctx context.Context, r *rig) error {
			_, err := r.m.Yield(ctx)
			return err
		}, nil},
		{"another model loads", func(ctx context.Context, r *rig) error {
			_, err := r.m.Load(ctx, "tiny-coder", "test")
			return err
		}, []string{"tiny-coder:latest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A vocabulary of 32,000 makes the end token rare (the tiny
			// models' 265 end a stream within a few hundred tokens), and
			// a fixed seed makes the stream the same each run.
			chatty := llama(2, 64)
			chatty.Vocab = 32000
			r := newRig(t, map[string]ggufgen.Spec{"tiny-chat": chatty, "tiny-coder": llama(2, 128)},
				manager.Options{Settings: manager.Settings{NumCtx: 1024, MaxLoaded: 1}}, server.Options{WriteTimeout: writeTimeout})
			ctx := ctxFor(t, 3*time.Minute)
			resp, stalled, rate := stallAReader(t, r)
			held := func() int {
				v, _ := r.m.Snapshot().Lookup("tiny-chat")
				return v.InFlight
			}
			if held() != 1 {
				t.Fatalf("holds on tiny-chat while it streams: %d, want 1", held())
			}
			done := make(chan error, 1)
			go func() { done <- tc.then(ctx, r) }()
			testwait.Until(t, "the hold ends after the client stopped reading", 2*time.Minute-time.Since(stalled), func() (bool, string) {
				n := held()
				return n == 0, fmt.Sprintf("%d holds on tiny-chat", n)
			})
			freed := time.Since(stalled)
			// The stream was cut, not ended: the hold ended for the deadline.
			rest, err := io.ReadAll(resp.Body)
			if err == nil || bytes.Contains(rest, []byte(`"done":true`)) {
				t.Fatalf("the generation ended by itself (%v, %d bytes), so the deadline was not what ended the hold", err, len(rest))
			}
			if err := <-done; err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			t.Logf("the hold ended %s after the client stopped reading (write deadline %s, the stream came at %.0f bytes/s); %s %s after",
				freed.Round(time.Millisecond), writeTimeout, rate, tc.name, time.Since(stalled).Round(time.Millisecond))
			var names []string
			for _, p := range r.ollama.Running(t) {
				names = append(names, p.Name)
			}
			if !slices.Equal(names, tc.after) {
				t.Errorf("then Ollama has %v loaded, want %v", names, tc.after)
			}
		})
	}
}

// stallAReader starts a long streamed generation of tiny-chat over a raw
// connection, reads it for a few seconds and then stops reading. It
// returns the response, when the reading stopped and the stream's rate.
func stallAReader(t *testing.T, r *rig) (*http.Response, time.Time, float64) {
	t.Helper()
	body := `{"model":"tiny-chat","prompt":"tell me everything","options":{"num_predict":1000000,"seed":42}}`
	base := serveReal(t, r.srv)
	c := dialRaw(t, base, fmt.Sprintf("POST /api/generate HTTP/1.1\nHost: %s\nContent-Length: %d", r.url.Host, len(body)), body)
	// What the client's own kernel takes of the stream before its window
	// shrinks is its business (with Linux's defaults some 20 to 60 KiB:
	// a minute of this CPU's tokens, see docs/RELIABILITY.md); a small
	// receive buffer shows the server's part within seconds.
	if err := c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Read for a while first, to know how fast the stream comes.
	var streamed int64
	for began := time.Now(); time.Since(began) < 3*time.Second; {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		streamed += int64(len(line))
	}
	t.Logf("the stream came at %.0f bytes/s", float64(streamed)/3)
	return resp, time.Now(), float64(streamed) / 3
}

// TestBodyThatStopsComingAgainstRealOllama: Content-Length 1000, 10
// bytes, silence (the 400 used to be logged at 60 s and never sent, the
// connection left open; pass-through paths had no body deadline at all).
// Each kind of path, the manager's and those passed through to Ollama,
// answers 408 at the body deadline and closes the connection, and Ollama
// is left as it was: nothing loaded, created or copied.
func TestBodyThatStopsComingAgainstRealOllama(t *testing.T) {
	r := newRig(t, map[string]ggufgen.Spec{"tiny-chat": llama(2, 64)},
		manager.Options{Settings: manager.Settings{NumCtx: 1024}},
		server.Options{AllowAdmin: true, BodyTimeout: testBodyTimeout, WriteTimeout: testWriteTimeout})
	base := serveReal(t, r.srv)
	for _, tc := range []struct{ method, path string }{
		{"POST", "/api/generate"}, // through the manager
		{"POST", "/v1/chat/completions"},
		{"POST", "/api/show"},           // passed through
		{"POST", "/api/copy"},           // passed through (admin allowed)
		{"POST", "/api/create"},         // passed through (admin allowed)
		{"POST", "/api/newer-endpoint"}, // one the proxy does not know
		{"POST", "/keeper/v1/models/tiny-chat/load"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			c := dialRaw(t, base, fmt.Sprintf("%s %s HTTP/1.1\nHost: %s\nContent-Type: application/json\nContent-Length: 1000",
				tc.method, tc.path, strings.TrimPrefix(base, "http://")), `{"model":"`)
			began := time.Now()
			c.SetReadDeadline(began.Add(neverWithin))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("%d %s, want 408", resp.StatusCode, body)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("after the answer: %v, want the connection closed", err)
			}
			t.Logf("408 and closed %s after the body stopped (body deadline %s)", time.Since(began).Round(time.Millisecond), testBodyTimeout)
		})
	}
	if ps := r.ollama.Running(t); len(ps) != 0 {
		t.Errorf("Ollama loaded %+v", ps)
	}
	list, err := r.ollama.Client.List(ctxFor(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) != 1 {
		t.Errorf("Ollama has %d models, want the one it had", len(list.Models))
	}
}
