package api_test

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vramkeeper/vramkeeper/internal/fakert"
	"github.com/vramkeeper/vramkeeper/internal/mgrtest"
	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// streamKeeper is the fake manager with subscriptions the test controls:
// each Subscribe hands out feed, and its cancel is counted.
type streamKeeper struct {
	*fakeKeeper
	feed         chan manager.Event
	subscribed   atomic.Int32
	unsubscribed chan struct{}
}

func (k *streamKeeper) Subscribe(int) (<-chan manager.Event, func()) {
	k.subscribed.Add(1)
	var once sync.Once
	return k.feed, func() { once.Do(func() { k.unsubscribed <- struct{}{} }) }
}

func newStreamKeeper() *streamKeeper {
	return &streamKeeper{
		fakeKeeper:   &fakeKeeper{models: map[string]bool{"a/b:c": false}},
		feed:         make(chan manager.Event),
		unsubscribed: make(chan struct{}, 1000),
	}
}

// lineCounter counts log messages containing a substring.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *lineCounter) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// TestEventStreamCap: 500 clients at once; the first MaxEventStreams get a
// stream, the rest a clear 503, and loads are served all the while.
func TestEventStreamCap(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const clients, capN = 500, 40
	k := newStreamKeeper()
	u, _ := url.Parse("http://127.0.0.1:1")
	hs := httptest.NewServer(server.New(k, u, server.Options{MaxEventStreams: capN,
		Log: slog.New(slog.DiscardHandler)}).Handler())
	defer hs.Close()
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	ctx, cancel := context.WithCancel(context.Background())
	var ok, refused, other atomic.Int32
	var wg sync.WaitGroup
	opened := make(chan struct{}, clients)
	for range clients {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL+"/keeper/v1/events", nil)
			resp, err := hc.Do(req)
			if err != nil {
				other.Add(1)
				opened <- struct{}{}
				return
			}
			defer resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
				opened <- struct{}{}
				// Hold the stream until the test ends.
				_, _ = bufio.NewReader(resp.Body).ReadString(0)
			case 503:
				refused.Add(1)
				opened <- struct{}{}
			default:
				other.Add(1)
				opened <- struct{}{}
			}
		})
	}
	for range clients {
		<-opened
	}
	// With every stream slot taken, the manager is still driven.
	c, err := client.Dial(context.Background(), hs.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := c.Load(context.Background(), "a/b:c", "test"); err != nil {
			t.Fatalf("load while %d streams are open: %v", ok.Load(), err)
		}
	}
	if ok.Load() != capN || refused.Load() != clients-capN || other.Load() != 0 {
		t.Fatalf("streams: %d open, %d refused, %d other; want %d, %d, 0", ok.Load(), refused.Load(), other.Load(), capN, clients-capN)
	}
	cancel()
	wg.Wait()
	for range capN {
		<-k.unsubscribed // every handler let go of its subscription
	}
	hc.CloseIdleConnections()
}

// TestSlowSubscriberDropped: a client that stops reading is dropped after
// the write deadline, with one log line, and its slot is free again.
func TestSlowSubscriberDropped(t *testing.T) {
	k := newStreamKeeper()
	u, _ := url.Parse("http://127.0.0.1:1")
	logs := &lineCounter{}
	hs := httptest.NewServer(server.New(k, u, server.Options{
		MaxEventStreams: 1, EventWriteTimeout: 200 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(logs, nil)),
	}).Handler())
	defer hs.Close()

	// A raw connection that sends the request and never reads.
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /keeper/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	big := manager.Event{Kind: manager.EventLoadFailed, Model: "a/b:c", Error: strings.Repeat("x", 64<<10)}
	deadline := time.After(30 * time.Second)
	sent := 0
feed:
	for {
		select {
		case k.feed <- big:
			sent++
		case <-k.unsubscribed:
			break feed
		case <-deadline:
			t.Fatalf("stream still open after %d unread events of 64 KiB", sent)
		}
	}
	if n := logs.count("event stream dropped"); n != 1 {
		t.Fatalf("%d log lines for one dropped stream, want 1", n)
	}
	// The slot is free: a new client gets a stream.
	req, _ := http.NewRequest("GET", hs.URL+"/keeper/v1/events", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := hs.Client().Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after the drop: %d, want a stream", resp.StatusCode)
	}
	t.Logf("dropped after %d unread events", sent)
}

// TestStreamEndsWhenManagerDrops: the manager closes the channel of a
// subscriber that fell behind; the client sees its stream end.
func TestStreamEndsWhenManagerDrops(t *testing.T) {
	k := newStreamKeeper()
	u, _ := url.Parse("http://127.0.0.1:1")
	hs := httptest.NewServer(server.New(k, u, server.Options{Log: slog.New(slog.DiscardHandler)}).Handler())
	defer hs.Close()
	resp, err := hs.Client().Get(hs.URL + "/keeper/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	close(k.feed)
	done := make(chan error, 1)
	go func() {
		_, err := bufio.NewReader(resp.Body).ReadString(0) // to EOF
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open after the manager dropped the subscriber")
	}
}

// TestEventStreamsRealManager: 500 event streams at once on the real
// manager (over the in-memory Ollama) while models are loaded and swapped
// through the API: the loads are all served, the streams past the cap
// are refused, and the open ones see the loads. Run with -race.
func TestEventStreamsRealManager(t *testing.T) {
	const clients, capN = 500, 64
	rt := fakert.New()
	names := []string{"qwen2.5:0.5b", "qwen2.5:1.5b", "llama3.2:1b"}
	for _, n := range names {
		rt.Add(n, 1, []string{"completion"}, 1)
	}
	m := mgrtest.Start(t, manager.Options{
		Runtime: rt, GPU: &fakert.GPU{RT: rt, Total: 8 << 30}, PollEvery: 50 * time.Millisecond,
		Logger:   slog.New(slog.DiscardHandler),
		Settings: manager.Settings{Budget: config.Size{Bytes: 3 << 30}, MaxLoaded: 2},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://127.0.0.1:1")
	hs := httptest.NewServer(server.New(m, u, server.Options{MaxEventStreams: capN, Log: slog.New(slog.DiscardHandler)}).Handler())
	defer hs.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	streamCtx, stopStreams := context.WithCancel(ctx)
	var open, refused atomic.Int32
	sawLoad := make(chan struct{}, clients)
	var wg sync.WaitGroup
	ready := make(chan struct{}, clients)
	for range clients {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(streamCtx, "GET", hs.URL+"/keeper/v1/events?kinds=loaded", nil)
			resp, err := hc.Do(req)
			if err != nil {
				ready <- struct{}{}
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				refused.Add(1)
				ready <- struct{}{}
				return
			}
			open.Add(1)
			ready <- struct{}{}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "event: loaded") {
					sawLoad <- struct{}{}
					break
				}
			}
			for sc.Scan() { // hold the stream until the test lets go
			}
		})
	}
	for range clients {
		<-ready
	}
	c, err := client.Dial(ctx, hs.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 { // more models than fit: every load swaps
		if _, err := c.Load(ctx, names[i%len(names)], "test"); err != nil {
			t.Fatalf("load %d with %d streams open: %v", i, open.Load(), err)
		}
	}
	if open.Load() != capN || refused.Load() != clients-capN {
		t.Fatalf("%d streams open, %d refused; want %d and %d", open.Load(), refused.Load(), capN, clients-capN)
	}
	// Every open stream sees a load (events reach subscribers promptly).
	deadline := time.After(time.Minute)
	for i := range capN {
		select {
		case <-sawLoad:
		case <-deadline:
			t.Fatalf("%d of %d streams saw a load", i, capN)
		}
	}
	stopStreams()
	wg.Wait()
}
