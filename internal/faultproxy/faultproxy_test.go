package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstream is a stand-in for Ollama: a load answers at once, a generation
// streams ten lines, /api/ps lists nothing. It records what reached it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // "path model"
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		name, in := classify(r.URL.Path, body)
		u.mu.Lock()
		u.seen = append(u.seen, r.URL.Path+" "+name)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-ndjson")
		switch {
		case r.URL.Path == "/api/ps":
			fmt.Fprint(w, `{"models":[]}`)
		case in == Infer:
			for i := range 10 {
				fmt.Fprintf(w, "{\"model\":%q,\"response\":\"token%02d\",\"done\":false}\n", name, i)
				w.(http.Flusher).Flush()
			}
			fmt.Fprintf(w, "{\"model\":%q,\"done\":true}\n", name)
		default:
			fmt.Fprintf(w, "{\"model\":%q,\"done\":true,\"done_reason\":%q}\n", name, in)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) saw() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

func (u *upstream) url(t *testing.T) *url.URL {
	p, err := url.Parse(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// answer is what a client got: a status and body, or a transport error.
type answer struct {
	status int
	body   string
	err    error
	took   time.Duration
}

// post sends body to path through base with the given deadline, on a
// client of its own that it closes.
func post(base, path, body string, within time.Duration) answer {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	began := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return answer{err: err, took: time.Since(began)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(b), err: err, took: time.Since(began)}
}

const (
	loadBody   = `{"model":"tiny","keep_alive":-1,"options":{"num_ctx":2048}}`
	unloadBody = `{"model":"tiny:latest","keep_alive":0}`
	inferBody  = `{"model":"tiny","prompt":"hello","stream":true}`
	otherBody  = `{"model":"other","keep_alive":-1}`
)

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rules   []Rule
		body    string
		within  time.Duration
		release bool // release held requests once the proxy has this one
		// want
		status   int    // 0: the client gets no answer (transport error)
		contains string // in the body (or the error)
		reached  bool   // the request reached the server
		fault    Fault
	}{
		{name: "no rule forwards", body: loadBody, within: 5 * time.Second,
			status: 200, contains: `"done_reason":"load"`, reached: true, fault: Pass},
		{name: "hang until the client gives up", rules: []Rule{{Match: Match{Model: "tiny"}, Fault: Hang}},
			body: loadBody, within: 200 * time.Millisecond, contains: "deadline exceeded", fault: Hang},
		{name: "hang until released", rules: []Rule{{Match: Match{Path: "/api/generate"}, Fault: Hang}},
			body: loadBody, within: 5 * time.Second, release: true, status: 502, contains: "released", fault: Hang},
		{name: "hang only unloads: a load passes", rules: []Rule{{Match: Match{Model: "tiny", Intent: Unload}, Fault: Hang}},
			body: loadBody, within: 5 * time.Second, status: 200, reached: true, fault: Pass},
		{name: "hang only unloads: an unload hangs", rules: []Rule{{Match: Match{Model: "tiny", Intent: Unload}, Fault: Hang}},
			body: unloadBody, within: 200 * time.Millisecond, contains: "deadline exceeded", fault: Hang},
		{name: "another model passes", rules: []Rule{{Match: Match{Model: "tiny"}, Fault: Hang}},
			body: otherBody, within: 5 * time.Second, status: 200, reached: true, fault: Pass},
		{name: "delay then forward", rules: []Rule{{Match: Match{Model: "tiny"}, Fault: Delay, Delay: 100 * time.Millisecond}},
			body: loadBody, within: 5 * time.Second, status: 200, reached: true, fault: Delay},
		{name: "delay past the client's deadline never forwards", rules: []Rule{{Match: Match{Model: "tiny"}, Fault: Delay, Delay: time.Minute}},
			body: loadBody, within: 100 * time.Millisecond, contains: "deadline exceeded", fault: Delay},
		{name: "respond out of memory", rules: []Rule{{Match: Match{Intent: Load}, Fault: Respond, Message: OutOfMemory(12<<30, 3<<30)}},
			body: loadBody, within: 5 * time.Second, status: 500,
			contains: `{"error":"model requires more system memory (12.0 GiB) than is available (3.0 GiB)"}`, fault: Respond},
		{name: "respond a chosen status", rules: []Rule{{Fault: Respond, Status: 503, Message: "busy"}},
			body: loadBody, within: 5 * time.Second, status: 503, contains: `"busy"`, fault: Respond},
		{name: "cut a stream after 60 bytes", rules: []Rule{{Match: Match{Intent: Infer}, Fault: Cut, After: 60}},
			body: inferBody, within: 5 * time.Second, status: 200, contains: "unexpected EOF", reached: true, fault: Cut},
		{name: "exhausted rule passes", rules: []Rule{{Fault: Respond, Message: "x", Times: 1}, {Fault: Pass}},
			body: loadBody, within: 5 * time.Second, status: 500, fault: Respond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t)
			p := New(up.url(t), Options{})
			srv := httptest.NewServer(p)
			defer srv.Close()
			p.Set(tc.rules...)
			if tc.release {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					if p.Wait(ctx, Match{}, 1) == nil {
						p.Release()
					}
				}()
			}
			got := post(srv.URL, "/api/generate", tc.body, tc.within)
			text := got.body
			if got.err != nil {
				text += got.err.Error()
			}
			if got.status != tc.status || !strings.Contains(text, tc.contains) {
				t.Fatalf("got status %d %q (err %v); want %d containing %q", got.status, got.body, got.err, tc.status, tc.contains)
			}
			if reached := len(up.saw()) > 0; reached != tc.reached {
				t.Errorf("reached the server: %v, want %v (%v)", reached, tc.reached, up.saw())
			}
			if n := p.CountFault(Match{}, tc.fault); n != 1 {
				t.Errorf("%d request(s) counted with fault %s, want 1: %+v", n, tc.fault, p.Recent())
			}
			if strings.Contains(tc.name, "cut") && strings.Count(got.body, "token") > 2 {
				t.Errorf("after a cut at 60 bytes the client read %q", got.body)
			}
		})
	}
}

// The official client sees the out-of-memory answer as Ollama's own error,
// and a cut stream as a failed one.
func TestOfficialClientSeesOllamasErrors(t *testing.T) {
	up := newUpstream(t)
	p := New(up.url(t), Options{})
	srv := httptest.NewServer(p)
	defer srv.Close()
	base, _ := url.Parse(srv.URL)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := api.NewClient(base, &http.Client{Transport: tr})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	p.Set(Rule{Match: Match{Model: "tiny", Intent: Load}, Fault: Respond, Message: OutOfMemory(5<<30, 1<<30)})
	err := c.Generate(ctx, &api.GenerateRequest{Model: "tiny"}, func(api.GenerateResponse) error { return nil })
	var serr api.StatusError
	if !errors.As(err, &serr) || serr.StatusCode != 500 || !strings.HasPrefix(serr.ErrorMessage, "model requires more system memory") {
		t.Fatalf("load through an out-of-memory rule: %v", err)
	}

	p.Set(Rule{Match: Match{Intent: Infer}, Fault: Cut, After: 100})
	var tokens int
	err = c.Generate(ctx, &api.GenerateRequest{Model: "tiny", Prompt: "hi"}, func(api.GenerateResponse) error { tokens++; return nil })
	if err == nil || tokens >= 10 {
		t.Fatalf("cut stream: %d tokens, err %v; want an error before the end", tokens, err)
	}

	p.Set() // rules change while it runs: healthy again
	tokens = 0
	if err := c.Generate(ctx, &api.GenerateRequest{Model: "tiny", Prompt: "hi"}, func(api.GenerateResponse) error { tokens++; return nil }); err != nil || tokens != 11 {
		t.Fatalf("after clearing the rules: %d tokens, err %v", tokens, err)
	}
}

func TestCountsAndWait(t *testing.T) {
	up := newUpstream(t)
	p := New(up.url(t), Options{})
	srv := httptest.NewServer(p)
	defer srv.Close()
	for _, b := range []string{loadBody, loadBody, unloadBody, inferBody, otherBody} {
		if a := post(srv.URL, "/api/generate", b, 5*time.Second); a.err != nil {
			t.Fatal(a.err)
		}
	}
	if a := post(srv.URL, "/api/ps", "", 5*time.Second); a.status != 200 {
		t.Fatalf("/api/ps: %+v", a)
	}
	for _, tc := range []struct {
		m    Match
		want int
	}{
		{Match{}, 6},
		{Match{Model: "tiny"}, 4},
		{Match{Model: "TINY:latest"}, 4},
		{Match{Model: "tiny", Intent: Load}, 2},
		{Match{Model: "tiny", Intent: Unload}, 1},
		{Match{Intent: Infer}, 1},
		{Match{Path: "/api/ps"}, 1},
		{Match{Path: "/api/ps", Intent: Other}, 1},
		{Match{Model: "other"}, 1},
	} {
		if got := p.Count(tc.m); got != tc.want {
			t.Errorf("Count(%+v) = %d, want %d", tc.m, got, tc.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx, Match{Model: "tiny"}, 4); err != nil {
		t.Errorf("Wait for what was seen: %v", err)
	}
	if err := p.Wait(ctx, Match{Model: "tiny"}, 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait for more than was seen = %v, want the deadline", err)
	}
	p.Reset()
	if n := p.Count(Match{}); n != 0 || len(p.Recent()) != 0 {
		t.Errorf("after Reset: %d counted, %d recent", n, len(p.Recent()))
	}
}

// Every wait has an end: MaxHold answers a request nobody releases, Close
// answers held ones, and a server that is gone drops the client.
func TestHoldsEnd(t *testing.T) {
	up := newUpstream(t)

	p := New(up.url(t), Options{MaxHold: 50 * time.Millisecond})
	srv := httptest.NewServer(p)
	defer srv.Close()
	p.Set(Rule{Fault: Hang})
	if a := post(srv.URL, "/api/generate", loadBody, 5*time.Second); a.status != 502 || !strings.Contains(a.body, "MaxHold") {
		t.Errorf("past MaxHold: %+v", a)
	}

	s, err := Listen(up.url(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Set(Rule{Fault: Hang})
	got := make(chan answer, 1)
	go func() { got <- post(s.URL.String(), "/api/generate", loadBody, 10*time.Second) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Wait(ctx, Match{}, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if a := <-got; a.status != 502 || !strings.Contains(a.body, "closed") {
		t.Errorf("held across Close: %+v", a)
	}

	gone := New(&url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Options{})
	gsrv := httptest.NewServer(gone)
	defer gsrv.Close()
	if a := post(gsrv.URL, "/api/ps", "", 5*time.Second); a.err == nil {
		t.Errorf("server down: the client got an answer %+v, want a failed connection", a)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		path, body string
		model      string
		intent     Intent
	}{
		{"/api/generate", `{"model":"m","keep_alive":-1}`, "m", Load},
		{"/api/generate", `{"model":"m","prompt":""}`, "m", Load},
		{"/api/generate", `{"model":"m","keep_alive":0}`, "m", Unload},
		{"/api/generate", `{"model":"m","keep_alive":"0s"}`, "m", Unload},
		{"/api/generate", `{"model":"m","keep_alive":"5m"}`, "m", Load},
		{"/api/generate", `{"model":"m","prompt":"hi","keep_alive":0}`, "m", Infer},
		{"/api/chat", `{"model":"m","messages":[]}`, "m", Load},
		{"/api/chat", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "m", Infer},
		{"/api/embed", `{"model":"e","keep_alive":-1}`, "e", Load},
		{"/api/embed", `{"model":"e","input":"text"}`, "e", Infer},
		{"/api/show", `{"name":"m"}`, "m", Other},
		{"/api/show", `{"model":"m","name":"n"}`, "m", Other},
		{"/api/ps", ``, "", Other},
		{"/v1/chat/completions", `{"model":"m"}`, "m", Infer},
		{"/api/generate", `not json`, "", Load},
		{"/api/generate", `{"model":7}`, "", Load},
	} {
		m, in := classify(tc.path, []byte(tc.body))
		if m != tc.model || in != tc.intent {
			t.Errorf("classify(%s, %s) = %q, %s; want %q, %s", tc.path, tc.body, m, in, tc.model, tc.intent)
		}
	}
}

func TestOutOfMemoryReadsAsOllamas(t *testing.T) {
	// llm/server.go: "model requires more system memory (%s) than is available (%s)"
	// with format.HumanBytes2.
	if got, want := OutOfMemory(1536<<20, 512<<20), "model requires more system memory (1.5 GiB) than is available (512.0 MiB)"; got != want {
		t.Errorf("OutOfMemory = %q, want %q", got, want)
	}
}
