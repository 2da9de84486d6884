package manager_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/mgrtest"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/ollama"
)

// scriptedCard is an NVIDIA card as the driver would report it while the
// real Ollama (on the CPU here) holds our models and the test plays other
// programs, whose use it sets at will.
type scriptedCard struct {
	rt     *ollama.Client
	total  uint64
	others atomic.Uint64

	mu    sync.Mutex
	worst int64 // the most ours + others ever exceeded the card, in bytes (≤ 0: never)
}

func (c *scriptedCard) Read(ctx context.Context) (card.VRAM, error) {
	ps, err := c.rt.Running(ctx)
	if err != nil {
		return card.VRAM{}, err
	}
	var ours uint64
	for _, r := range ps {
		ours += max(r.SizeBytes, r.VRAMBytes)
	}
	used := ours + c.others.Load()
	c.mu.Lock()
	c.worst = max(c.worst, int64(used)-int64(c.total))
	c.mu.Unlock()
	free := max(c.total, used) - used
	return card.VRAM{Source: card.SourceNVML, Name: "scripted card", Total: c.total, Used: used, Free: free}, nil
}

// runningCtx maps the models on the server to their context lengths.
func runningCtx(t *testing.T, srv *ollamatest.Server) map[string]int {
	out := map[string]int{}
	for _, r := range srv.Running(t) {
		out[r.Name] = r.ContextLength
	}
	return out
}

// realDesktop starts the real Ollama with two of the generated models and
// a manager over a scripted card.
func realDesktop(t *testing.T, set manager.Settings) (*manager.Manager, *ollamatest.Server, *scriptedCard) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a real Ollama")
	}
	srv := ollamatest.Start(t)
	for _, m := range realModels[1:3] { // chat-mid, coder-small
		srv.Create(t, m.name, m.spec)
	}
	rt := ollama.New(srv.URL, nil)
	card := &scriptedCard{rt: rt, total: 4 << 30}
	set.SafetyMargin = 1 << 20
	set.Budget = config.Size{Bytes: 2 << 30}
	m := mgrtest.Start(t, manager.Options{Runtime: rt, GPU: card, StateDir: t.TempDir(),
		PollEvery: 100 * time.Millisecond, Settings: set})
	manager.VerifySnapshots(t, m)
	if err := m.Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return m, srv, card
}

// Other programs take the card and give it back: the least recently used
// model is unloaded to make room and loaded again afterwards, and the card
// never holds more than it has.
func TestGivesTheCardBackToOtherPrograms(t *testing.T) {
	m, srv, card := realDesktop(t, manager.Settings{NumCtx: 2048, Policy: "lru"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sub, stop := m.Subscribe(256)
	defer stop()
	for _, n := range []string{"coder-small:latest", "chat-mid:latest"} {
		if _, err := m.Load(ctx, n, "test"); err != nil {
			t.Fatal(err)
		}
	}
	ours := m.Snapshot().Used
	// A game takes what is free but half the safety margin: ours no longer
	// fit beside it with the margin kept.
	card.others.Store(card.total - ours - 1<<19)
	waitForLong(t, "coder-small given back", func() bool {
		_, on := runningCtx(t, srv)["coder-small:latest"]
		return !on
	})
	if _, on := runningCtx(t, srv)["chat-mid:latest"]; !on {
		t.Fatal("the model used last was given back too")
	}
	card.others.Store(0) // the game quits
	waitForLong(t, "coder-small put back", func() bool {
		ctxs := runningCtx(t, srv)
		return ctxs["coder-small:latest"] == 2048 && ctxs["chat-mid:latest"] == 2048
	})
	if card.worst > 0 {
		t.Errorf("ours and the other programs' overfilled the card by %d bytes at a poll", card.worst)
	}
	// The manager hears of the load after Ollama lists it: wait for its
	// event.
	var kinds []manager.EventKind
	timeout := time.After(time.Minute)
	for len(kinds) < 2 {
		select {
		case e := <-sub:
			if e.Kind == manager.EventYielded || e.Kind == manager.EventRestored {
				kinds = append(kinds, e.Kind)
				if e.Model != "coder-small:latest" {
					t.Errorf("%s of %s", e.Kind, e.Model)
				}
			}
		case <-timeout:
			t.Fatalf("events %v after a minute, want yielded then restored", kinds)
		}
	}
	if !slices.Equal(kinds, []manager.EventKind{manager.EventYielded, manager.EventRestored}) {
		t.Errorf("events %v, want yielded then restored", kinds)
	}
}

// Yield empties /api/ps; Restore brings the same models back at the same
// context lengths, the per-model one included.
func TestYieldRestoreAgainstRealOllama(t *testing.T) {
	m, srv, _ := realDesktop(t, manager.Settings{NumCtx: 2048, Contexts: map[string]int{"chat-mid:latest": 4096}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := m.Load(ctx, "chat-mid:latest", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.LoadAt(ctx, "coder-small:latest", 8192, "test"); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"chat-mid:latest": 4096, "coder-small:latest": 8192}
	if got := runningCtx(t, srv); !mapsEqual(got, want) {
		t.Fatalf("loaded at %v, want %v (the model's own and the asked context)", got, want)
	}
	began := time.Now()
	if _, err := m.Yield(ctx); err != nil {
		t.Fatal(err)
	}
	if got := runningCtx(t, srv); len(got) != 0 {
		t.Fatalf("after yield %v still loaded", got)
	}
	t.Logf("yield emptied /api/ps in %s", time.Since(began).Round(time.Millisecond))
	if _, err := m.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if got := runningCtx(t, srv); !mapsEqual(got, want) {
		t.Fatalf("restored at %v, want %v", got, want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// waitForLong is waitFor for steps that go through the real server.
func waitForLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
