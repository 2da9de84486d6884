package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
)

// The deadlines every request gets (deadline.go), against clients that
// misbehave on purpose over raw connections. Each wait in these tests is
// a bound on something that used to never happen (an answer, a closed
// connection, a released hold), far above the deadline it checks.

const (
	testBodyTimeout  = 300 * time.Millisecond
	testWriteTimeout = 300 * time.Millisecond
	// neverWithin: what did not happen by then never would have.
	neverWithin = 20 * time.Second
)

// dialRaw opens a connection to the server at base and sends head (the
// request line and headers, without the blank line) and then part of a
// body.
func dialRaw(t *testing.T, base, head, part string) net.Conn {
	t.Helper()
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, strings.ReplaceAll(head, "\n", "\r\n")+"\r\n\r\n"+part); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBodyThatStopsComing: a client announces 1000 bytes, sends 10 and
// falls silent. Every kind of endpoint answers 408 once the body deadline
// passes (the proxied ones without having passed anything on), then
// closes the connection; a request refused before its body is read is
// answered at once and closed too.
func TestBodyThatStopsComing(t *testing.T) {
	var mu sync.Mutex
	var reached []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		mu.Lock()
		reached = append(reached, fmt.Sprintf("%s %s (%d bytes, %v)", r.Method, r.URL.Path, len(b), err))
		mu.Unlock()
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	for _, tc := range []struct {
		name, token  string
		method, path string
		auth         string
		want         int
	}{
		{"native inference", "", "POST", "/api/generate", "", 408},
		{"OpenAI", "", "POST", "/v1/chat/completions", "", 408},
		{"Anthropic", "", "POST", "/v1/messages", "", 408},
		{"show", "", "POST", "/api/show", "", 408},
		{"delete", "", "DELETE", "/api/delete", "", 408},
		{"management", "", "POST", "/keeper/v1/models/a/b:c/load", "", 408},
		{"passed through", "", "POST", "/api/newer-endpoint", "", 408},
		{"admin passed through", "", "POST", "/api/create", "", 408},
		{"blob upload: each read within the deadline", "", "POST", "/api/blobs/sha256:abc", "", 408},
		{"refused before reading", "t", "POST", "/api/generate", "Bearer wrong", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newHoldKeeper()
			s := server.New(k, u, server.Options{Token: tc.token, BodyTimeout: testBodyTimeout, WriteTimeout: testWriteTimeout})
			base := serveReal(t, s)
			head := fmt.Sprintf("%s %s HTTP/1.1\nHost: %s\nContent-Type: application/json\nContent-Length: 1000", tc.method, tc.path, strings.TrimPrefix(base, "http://"))
			if tc.auth != "" {
				head += "\nAuthorization: " + tc.auth
			}
			c := dialRaw(t, base, head, `{"model":"`)
			c.SetReadDeadline(time.Now().Add(neverWithin))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Errorf("%d %s, want %d", resp.StatusCode, body, tc.want)
			}
			if tc.want == 408 && !strings.Contains(string(body), "did not arrive") {
				t.Errorf("answer %s does not say the body did not arrive", body)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("after the answer: %v, want the connection closed", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range reached {
				if !strings.Contains(r, "unexpected EOF") && !strings.Contains(r, "10 bytes") {
					t.Errorf("Ollama got a whole request: %s", r)
				}
			}
			reached = nil
		})
	}
}

// releaseKeeper signals every release of a hold.
type releaseKeeper struct {
	*holdKeeper
	released chan string
}

func (k *releaseKeeper) Acquire(ctx context.Context, name, reason string) (func(), manager.LoadResult, error) {
	release, res, err := k.holdKeeper.Acquire(ctx, name, reason)
	return func() { release(); k.released <- name }, res, err
}

// TestClientThatStopsReading: a client reads the first chunks of a
// streamed generation and stops reading. Once the socket buffers are full
// the write deadline passes: the request fails, the model's hold ends and
// the request to Ollama is cancelled, while the generation would go on.
func TestClientThatStopsReading(t *testing.T) {
	upstreamDone := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(upstreamDone)
		io.Copy(io.Discard, r.Body)
		chunk := `{"model":"a/b:c","response":"` + strings.Repeat("x", 1000) + `","done":false}` + "\n"
		for r.Context().Err() == nil {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	k := &releaseKeeper{holdKeeper: newHoldKeeper(), released: make(chan string, 1)}
	base := serveReal(t, server.New(k, u, server.Options{WriteTimeout: testWriteTimeout}))
	body := `{"model":"a/b:c","prompt":"go on forever"}`
	c := dialRaw(t, base, fmt.Sprintf("POST /api/generate HTTP/1.1\nHost: 127.0.0.1\nContent-Length: %d", len(body)), body)
	br := bufio.NewReader(c)
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing more, and keeps the connection open.
	select {
	case name := <-k.released:
		if name != "a/b:c" {
			t.Errorf("released %s", name)
		}
	case <-time.After(neverWithin):
		t.Fatal("the hold on the model outlived the client that stopped reading")
	}
	select {
	case <-upstreamDone:
	case <-time.After(neverWithin):
		t.Fatal("the generation in Ollama was not cancelled")
	}
}

// slowKeeper takes a while to load, longer than the write deadline.
type slowKeeper struct {
	*holdKeeper
	wait time.Duration
}

func (k *slowKeeper) Acquire(ctx context.Context, name, reason string) (func(), manager.LoadResult, error) {
	select {
	case <-time.After(k.wait):
	case <-ctx.Done():
		return func() {}, manager.LoadResult{}, ctx.Err()
	}
	return k.holdKeeper.Acquire(ctx, name, reason)
}

// TestWriteDeadlineIsPerWrite: a response that starts long after the
// request (a load that takes longer than the write deadline) and a
// stream longer than it are served whole, twice on one connection.
func TestWriteDeadlineIsPerWrite(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		for i := range 4 {
			fmt.Fprintf(w, `{"model":"a/b:c","response":"%d","done":%v}`+"\n", i, i == 3)
			w.(http.Flusher).Flush()
			time.Sleep(testWriteTimeout / 2) // the whole stream outlasts the deadline
		}
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	k := &slowKeeper{holdKeeper: newHoldKeeper(), wait: 3 * testWriteTimeout}
	base := serveReal(t, server.New(k, u, server.Options{WriteTimeout: testWriteTimeout}))
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	for i := range 2 {
		resp, err := client.Post(base+"/api/generate", "application/json", strings.NewReader(`{"model":"a/b:c","prompt":"hi"}`))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !strings.Contains(string(b), `"done":true`) {
			t.Fatalf("request %d: %d %s (%v), want the whole stream", i, resp.StatusCode, b, err)
		}
	}
}

// TestHeadersPastTheBound: a request whose headers run past 64 KiB is
// refused with 431 before any handler (the default, 1 MiB, let one request
// put a megabyte into every log line that names its path); one under the
// bound is served.
func TestHeadersPastTheBound(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) }))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	base := serveReal(t, server.New(newHoldKeeper(), u, server.Options{}))
	for _, tc := range []struct {
		size int
		want int
	}{{32 << 10, http.StatusOK}, {100 << 10, http.StatusRequestHeaderFieldsTooLarge}, {1 << 20, http.StatusRequestHeaderFieldsTooLarge}} {
		req, _ := http.NewRequest("GET", base+"/api/version", nil)
		req.Header.Set("X-Filler", strings.Repeat("x", tc.size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%d bytes of headers: %v", tc.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d bytes of headers: %d, want %d", tc.size, resp.StatusCode, tc.want)
		}
	}
}
