package manager_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/fakert"
	"github.com/vramkeeper/vramkeeper/internal/mgrtest"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/card"
)

// twoCards is a machine with two cards whose free memory the test moves.
type twoCards struct {
	mu    sync.Mutex
	cards []card.Card
}

func (g *twoCards) Read(context.Context) (card.VRAM, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := card.VRAM{Source: card.SourceNVML, Cards: append([]card.Card(nil), g.cards...)}
	for _, c := range g.cards {
		v.Total, v.Used, v.Free, v.Ollama = v.Total+c.Total, v.Used+c.Used, v.Free+c.Free, v.Ollama+c.Ollama
	}
	return v, nil
}

// use sets what card i holds, ollama of it Ollama's.
func (g *twoCards) use(i int, used, ollama uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cards[i].Used, g.cards[i].Free, g.cards[i].Ollama = used, g.cards[i].Total-used, ollama
}

// A model goes where Ollama would put it: on the card with the most free
// memory, which moves as other programs take memory; each view follows.
func TestPlacementFollowsFreeMemory(t *testing.T) {
	rt := fakert.New()
	rt.Add("small:3b", 3, nil, 1)
	gpu := &twoCards{cards: []card.Card{
		{Name: "RTX 4060", Source: card.SourceNVML, Total: 8 << 30, Free: 8 << 30, OllamaKnown: true},
		{Name: "RTX 3060", Source: card.SourceNVML, Total: 12 << 30, Free: 12 << 30, OllamaKnown: true},
	}}
	m := mgrtest.Start(t, manager.Options{Runtime: rt, GPU: gpu, StateDir: t.TempDir(), PollEvery: time.Hour})
	manager.VerifySnapshots(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	steps := []struct {
		used, ollama [2]uint64
		want         string
	}{
		{want: "RTX 3060"},
		{used: [2]uint64{0, 10 << 30}, want: "RTX 4060"}, // a game took the 3060
		{want: "RTX 3060"},
		// Ollama's own runners (another client's models) move from one
		// card to the other: the room for ours is the same, the freest
		// card is not.
		{used: [2]uint64{0, 6 << 30}, ollama: [2]uint64{0, 6 << 30}, want: "RTX 4060"},
		{used: [2]uint64{6 << 30, 0}, ollama: [2]uint64{6 << 30, 0}, want: "RTX 3060"},
	}
	for i, st := range steps {
		gpu.use(0, st.used[0], st.ollama[0])
		gpu.use(1, st.used[1], st.ollama[1])
		if err := m.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		s := m.Snapshot()
		v, _ := s.Model("small:3b")
		if v.Card != st.want || v.CardCount != 1 || len(s.Cards) != 2 || s.Cards[1].Others != st.used[1]-st.ollama[1] ||
			s.Others != st.used[0]+st.used[1]-st.ollama[0]-st.ollama[1] {
			t.Errorf("step %d: small:3b on %q (%d), cards %+v; want %s", i, v.Card, v.CardCount, s.Cards, st.want)
		}
	}
}
