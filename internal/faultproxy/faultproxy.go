// Package faultproxy is an HTTP proxy that stands in front of a real Ollama
// server and misbehaves on purpose, for the fault tests: per rule, matched
// by endpoint, model and intent (load, unload, inference), it hangs a
// request, delays it, answers an error of its own (Ollama's out-of-memory
// message, a 500), or cuts the connection partway through the response. It
// counts every request it sees. Rules change while it runs.
//
// Everything else passes through unchanged, streamed as it arrives. When the
// server behind it cannot be reached, the proxy drops the client's connection
// without an answer, so the client sees what it would see without the proxy:
// a connection that failed.
package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/ollama/ollama/format"
)

// Fault is what a rule does to the requests it matches.
type Fault int

const (
	// Pass forwards the request unchanged (a rule that only counts).
	Pass Fault = iota
	// Hang holds the request and never forwards it, until Release, the
	// client gives up, the proxy closes or Options.MaxHold passes; then it
	// answers 502.
	Hang
	// Delay waits Rule.Delay (or until the client gives up), then forwards.
	Delay
	// Respond answers Rule.Status with {"error": Rule.Message}, as Ollama
	// writes its errors, without forwarding.
	Respond
	// Cut forwards the request, passes the response's headers and its first
	// Rule.After body bytes, then drops the connection.
	Cut
)

func (f Fault) String() string {
	switch f {
	case Pass:
		return "pass"
	case Hang:
		return "hang"
	case Delay:
		return "delay"
	case Respond:
		return "respond"
	case Cut:
		return "cut"
	}
	return "fault(?)"
}

// Match selects requests; a zero field matches anything.
type Match struct {
	Path   string // exact URL path, e.g. "/api/generate"
	Model  string // the body's "model" (or "name"), compared as Ollama does
	Intent Intent
}

func (m Match) matches(path, name string, in Intent) bool {
	return (m.Path == "" || m.Path == path) &&
		(m.Model == "" || sameModel(m.Model, name)) &&
		(m.Intent == AnyIntent || m.Intent == in)
}

// Rule is one fault for the requests its Match selects.
type Rule struct {
	Match
	Fault   Fault
	Delay   time.Duration // Delay
	Status  int           // Respond (default 500)
	Message string        // Respond
	After   int64         // Cut: body bytes passed before the cut
	// Times is how many requests the rule acts on before it stops
	// matching; 0 is every one.
	Times int
}

// OutOfMemory is the error Ollama (v0.17, llm/server.go) answers, with
// status 500, when a model needs more memory than the machine has free.
func OutOfMemory(required, available uint64) string {
	return fmt.Sprintf("model requires more system memory (%s) than is available (%s)",
		format.HumanBytes2(required), format.HumanBytes2(available))
}

// Seen is one request the proxy received and what it did with it.
type Seen struct {
	Time   time.Time
	Method string
	Path   string
	Model  string
	Intent Intent
	Fault  Fault
}

// Options configure a Proxy; zero values take the defaults.
type Options struct {
	// MaxHold bounds how long Hang holds a request (default 5 minutes), so
	// a test that forgets to release one still ends.
	MaxHold time.Duration
	// DialTimeout bounds connecting to the server (default 5 seconds).
	DialTimeout time.Duration
	Log         *slog.Logger
}

// recentLimit bounds the log Recent returns; counts are kept in full.
const recentLimit = 256

// Proxy is an http.Handler in front of one server. Its methods are safe for
// concurrent use.
type Proxy struct {
	opt     Options
	forward *httputil.ReverseProxy

	mu       sync.Mutex
	rules    []*armed
	counts   map[countKey]int
	recent   []Seen
	released chan struct{} // closed by Release; replaced after
	changed  chan struct{} // closed when a request is counted; replaced after
	closed   chan struct{}
	isClosed bool
}

// armed is a rule with what is left of its Times.
type armed struct {
	Rule
	left int // -1: unlimited
}

type countKey struct {
	method, path, model string
	intent              Intent
	fault               Fault
}

// New returns a proxy to upstream.
func New(upstream *url.URL, opt Options) *Proxy {
	if opt.MaxHold <= 0 {
		opt.MaxHold = 5 * time.Minute
	}
	if opt.DialTimeout <= 0 {
		opt.DialTimeout = 5 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	p := &Proxy{opt: opt, counts: map[countKey]int{}, released: make(chan struct{}),
		changed: make(chan struct{}), closed: make(chan struct{})}
	p.forward = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(upstream) },
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: opt.DialTimeout}).DialContext,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     30 * time.Second,
		},
		// Streamed answers pass each chunk at once, as Ollama sends them.
		FlushInterval: -1,
		ErrorHandler:  p.unreachable,
		ErrorLog:      slog.NewLogLogger(opt.Log.Handler(), slog.LevelDebug),
	}
	return p
}

// Set replaces every rule; the first rule that matches a request acts on it.
func (p *Proxy) Set(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = p.rules[:0]
	for _, r := range rules {
		left := r.Times
		if left == 0 {
			left = -1
		}
		p.rules = append(p.rules, &armed{Rule: r, left: left})
	}
}

// Release answers every request held by Hang now (502); requests that
// arrive later are held again while a Hang rule matches them.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.released)
	p.released = make(chan struct{})
}

// Reset drops the rules, releases held requests and zeroes the counts.
func (p *Proxy) Reset() {
	p.Set()
	p.Release()
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.counts)
	p.recent = nil
}

// Close releases every held request and delayed one, and makes later ones
// fail at once; it does not stop requests already forwarded.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.isClosed {
		p.isClosed = true
		close(p.closed)
	}
}

// Count is how many requests matching m the proxy received.
func (p *Proxy) Count(m Match) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.countLocked(m)
}

// CountFault is Count limited to requests f was done to.
func (p *Proxy) CountFault(m Match, f Fault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, c := range p.counts {
		if k.fault == f && m.matches(k.path, k.model, k.intent) {
			n += c
		}
	}
	return n
}

func (p *Proxy) countLocked(m Match) int {
	n := 0
	for k, c := range p.counts {
		if m.matches(k.path, k.model, k.intent) {
			n += c
		}
	}
	return n
}

// Wait returns once the proxy has received at least n requests matching
// m, or ctx ends.
func (p *Proxy) Wait(ctx context.Context, m Match, n int) error {
	for {
		p.mu.Lock()
		got, changed := p.countLocked(m), p.changed
		p.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d request(s) matching %+v, got %d: %w", n, m, got, ctx.Err())
		}
	}
}

// Recent returns the last requests received, oldest first.
func (p *Proxy) Recent() []Seen {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Seen(nil), p.recent...)
}

// ServeHTTP applies the first matching rule to r.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			http.Error(w, fmt.Sprintf("fault proxy: reading the request: %v", err), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	name, in := classify(r.URL.Path, body)
	rule, released, closed := p.take(r.Method, r.URL.Path, name, in)
	switch rule.Fault {
	case Hang:
		p.hold(w, r, released, closed)
		return
	case Respond:
		status := rule.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		writeError(w, status, rule.Message)
		return
	case Delay:
		t := time.NewTimer(rule.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return // the client left; nothing to answer
		case <-closed:
			writeError(w, http.StatusBadGateway, "fault proxy closed")
			return
		}
	case Cut:
		w = &cutter{ResponseWriter: w, left: rule.After}
	}
	p.forward.ServeHTTP(w, r)
}

// take counts the request and returns the rule that acts on it (Pass when
// none), with the channels a held request waits on.
func (p *Proxy) take(method, path, name string, in Intent) (Rule, chan struct{}, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rule := Rule{Fault: Pass}
	for _, a := range p.rules {
		if a.left != 0 && a.matches(path, name, in) {
			if a.left > 0 {
				a.left--
			}
			rule = a.Rule
			break
		}
	}
	p.counts[countKey{method: method, path: path, model: name, intent: in, fault: rule.Fault}]++
	p.recent = append(p.recent, Seen{Time: time.Now(), Method: method, Path: path, Model: name, Intent: in, Fault: rule.Fault})
	if over := len(p.recent) - recentLimit; over > 0 {
		p.recent = append(p.recent[:0:0], p.recent[over:]...)
	}
	close(p.changed)
	p.changed = make(chan struct{})
	return rule, p.released, p.closed
}

// hold keeps a request without forwarding it.
func (p *Proxy) hold(w http.ResponseWriter, r *http.Request, released, closed chan struct{}) {
	t := time.NewTimer(p.opt.MaxHold)
	defer t.Stop()
	var why string
	select {
	case <-r.Context().Done():
		return // the client gave up, as it should
	case <-released:
		why = "released"
	case <-closed:
		why = "closed"
	case <-t.C:
		why = fmt.Sprintf("held for %s (MaxHold)", p.opt.MaxHold)
	}
	writeError(w, http.StatusBadGateway, "fault proxy: request "+why)
}

// unreachable drops the client's connection when the server cannot be
// reached, as the server's own failure would.
func (p *Proxy) unreachable(_ http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, context.Canceled) {
		p.opt.Log.Debug("fault proxy: upstream failed; dropping the client", "path", r.URL.Path, "err", err)
	}
	panic(http.ErrAbortHandler)
}

// writeError answers as Ollama does: {"error": "..."}.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// errCut is what a cutter's Write returns once its bytes are spent; the
// reverse proxy then aborts the connection (http.ErrAbortHandler).
var errCut = errors.New("fault proxy: connection cut")

// cutter passes left bytes of the body, then fails every write.
type cutter struct {
	http.ResponseWriter
	left int64
}

func (c *cutter) Write(b []byte) (int, error) {
	if int64(len(b)) <= c.left {
		c.left -= int64(len(b))
		return c.ResponseWriter.Write(b)
	}
	n, _ := c.ResponseWriter.Write(b[:c.left])
	c.left = 0
	_ = http.NewResponseController(c.ResponseWriter).Flush()
	return n, errCut
}

func (c *cutter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Server is a Proxy listening on a loopback port of its own.
type Server struct {
	*Proxy
	URL  *url.URL
	srv  *http.Server
	done chan error
}

// Listen starts a Proxy to upstream on 127.0.0.1 at a free port.
func Listen(upstream *url.URL, opt Options) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: listening: %w", err)
	}
	p := New(upstream, opt)
	s := &Server{Proxy: p, URL: &url.URL{Scheme: "http", Host: l.Addr().String()},
		srv: &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, ErrorLog: p.forward.ErrorLog}, done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(l) }()
	return s, nil
}

// Close releases held requests, stops listening and waits (at most
// closeWait) for the requests in flight, then drops them.
func (s *Server) Close() error {
	const closeWait = 5 * time.Second
	s.Proxy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	s.forward.Transport.(*http.Transport).CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("fault proxy: closing: %w", err)
	}
	return nil
}
