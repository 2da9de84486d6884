package manager_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/prefetch"
)

// fakePrefetcher records what it is asked to warm; with hold set it waits
// until its context ends, as a long read would.
type fakePrefetcher struct {
	hold    bool
	mu      sync.Mutex
	warmed  []string
	stopped chan struct{} // closed when a held warm saw its context end
	ctx     context.Context
}

func (p *fakePrefetcher) Warm(ctx context.Context, path string) (prefetch.Result, error) {
	p.mu.Lock()
	p.warmed = append(p.warmed, path)
	p.ctx = ctx
	p.mu.Unlock()
	if p.hold {
		<-ctx.Done()
		close(p.stopped)
		return prefetch.Result{Path: path, Size: 100, Resident: 0.5, Stopped: prefetch.StopCancelled}, ctx.Err()
	}
	return prefetch.Result{Path: path, Size: 100, Read: 100, Resident: 1, Stopped: prefetch.StopDone}, nil
}

func (p *fakePrefetcher) calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.warmed...)
}

// clock is a test clock the manager reads.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// After a few requests the manager, idle, warms the file of a model it
// expects next that is not loaded, and shows it warm.
func TestIdleManagerPrefetchesThePredictedModel(t *testing.T) {
	rt := newFakeRuntime()
	for _, n := range []string{"a:3b", "b:3b", "c:3b"} {
		rt.add(n, 3.2, nil, 1)
	}
	p := &fakePrefetcher{}
	clk := newClock()
	m := start(t, rt, manager.Options{Prefetcher: p, Now: clk.now, Settings: manager.Settings{MaxLoaded: 1}})
	for range 3 {
		for _, n := range []string{"a:3b", "b:3b", "c:3b"} {
			if _, err := m.Load(ctxT(t), n, "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(p.calls()) != 0 {
		t.Fatalf("prefetched while busy: %v", p.calls())
	}
	clk.advance(3 * time.Second)
	waitFor(t, "a prefetch", func() bool { return len(p.calls()) > 0 })
	got := p.calls()[0]
	if got == "/models/blobs/c:3b" {
		t.Fatalf("prefetched the loaded model %s", got)
	}
	name := got[len("/models/blobs/"):]
	waitFor(t, "the model shown warm", func() bool { v, _ := m.Snapshot().Model(name); return v.WarmPercent == 100 })
}

// A request that arrives while a prefetch reads stops it before its own
// load starts.
func TestRequestStopsPrefetchFirst(t *testing.T) {
	rt := newFakeRuntime()
	for _, n := range []string{"a:3b", "b:3b"} {
		rt.add(n, 3.2, nil, 1)
	}
	p := &fakePrefetcher{hold: true, stopped: make(chan struct{})}
	clk := newClock()
	m := start(t, rt, manager.Options{Prefetcher: p, Now: clk.now, Settings: manager.Settings{MaxLoaded: 1}})
	for _, n := range []string{"a:3b", "b:3b", "a:3b"} {
		if _, err := m.Load(ctxT(t), n, "test"); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(3 * time.Second)
	waitFor(t, "a prefetch", func() bool { return len(p.calls()) > 0 })
	var stoppedFirst atomic.Bool
	rt.SetLoadHook(func(string) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		stoppedFirst.Store(p.ctx.Err() != nil)
		return nil
	})
	if _, err := m.Load(ctxT(t), "b:3b", "test"); err != nil {
		t.Fatal(err)
	}
	if !stoppedFirst.Load() {
		t.Fatal("the load started before the prefetch was told to stop")
	}
	<-p.stopped // and it did stop
}
