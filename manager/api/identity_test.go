package api_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// logRecorder keeps the messages logged, for counting.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
	saw  chan string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.Value.String(); return true })
	l.mu.Lock()
	l.msgs = append(l.msgs, msg)
	l.mu.Unlock()
	select {
	case l.saw <- msg:
	default:
	}
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

// served is an instance serving on an address; checks counts the clients'
// GET /keeper/v1/instance.
type served struct {
	mu     sync.Mutex
	checks int
	stop   func()
}

func (s *served) checked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checks
}

// serveAt serves k on addr as the instance me until stop.
func serveAt(t *testing.T, addr string, k server.Manager, me wire.Instance) *served {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &served{}
	h := server.New(k, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, server.Options{
		Log: slog.New(slog.DiscardHandler), Instance: func() wire.Instance { return me }}).Handler()
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/keeper/v1/instance" {
			s.mu.Lock()
			s.checks++
			s.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})}
	go func() { _ = hs.Serve(ln) }()
	once := sync.Once{}
	s.stop = func() { once.Do(func() { _ = hs.Close() }) }
	t.Cleanup(s.stop)
	return s
}

// The window's Remote follows its own instance only: when that one goes
// away and another takes its address, the other's models never show, and
// the failures are logged once each, not at every retry.
func TestRemoteFollowsOnlyItsInstance(t *testing.T) {
	ours := wire.Instance{PID: 1, Ollama: "http://127.0.0.1:11434", StateDir: "/state/ours"}
	theirs := wire.Instance{PID: 2, Ollama: "http://127.0.0.1:11801", StateDir: "/state/theirs"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	first := serveAt(t, addr, &fakeKeeper{models: map[string]bool{"ours:latest": true}}, ours)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, theirs); err == nil {
		t.Fatal("Verify took our instance for theirs")
	}
	if _, err := c.Verify(ctx, ours); err != nil {
		t.Fatal(err)
	}
	logs := &logRecorder{saw: make(chan string, 64)}
	r := client.NewRemote(c, slog.New(logs))
	r.Expect(ours)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ev, unsubscribe := r.Subscribe(4)
	defer unsubscribe()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(rctx) }()
	defer func() { stop(); <-done }()

	<-ev // following our instance's events
	first.stop()
	other := serveAt(t, addr, &fakeKeeper{models: map[string]bool{"theirs:latest": true}}, theirs)
	// Reconnects find the other instance; the second must not log (its
	// log line is written before the third check).
	for other.checked() < 3 {
		select {
		case <-logs.saw:
		case <-time.After(100 * time.Millisecond): // polling the count, bounded by ctx
		case <-ctx.Done():
			t.Fatal("the Remote did not check the instance on its address three times")
		}
	}
	if n := logs.count("/state/theirs"); n != 1 {
		t.Errorf("the other instance was logged %d times, want once: %q", n, logs.msgs)
	}
	for _, m := range r.Snapshot().Models {
		if m.Name == "theirs:latest" {
			t.Fatalf("the Remote shows the other instance's model: %+v", r.Snapshot().Models)
		}
	}
}
