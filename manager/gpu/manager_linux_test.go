package gpu

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/fakert"
	"github.com/vramkeeper/vramkeeper/internal/mgrtest"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/evict"
)

// startManager runs a manager over probe and a fake Ollama with a small
// and a large model, and reads the server and the card once.
func startManager(t *testing.T, probe *Probe, models map[string]float64) (*manager.Manager, *fakert.Runtime) {
	t.Helper()
	rt := fakert.New()
	for name, b := range models {
		rt.Add(name, b, nil, 1)
	}
	m := mgrtest.Start(t, manager.Options{Runtime: rt, GPU: probe, StateDir: t.TempDir(), PollEvery: time.Hour,
		Settings: manager.Settings{NumCtx: 4096}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return m, rt
}

// Issue 17's acceptance, in the manager: an 8 GiB amdgpu card with 3 GiB
// held by a game is read as such; estimates count the GPU's graph and
// driver overhead before anything loaded; a model that needs more than
// the room beside the game is refused, as with NVML.
func TestManagerOnAMDCard(t *testing.T) {
	m, rt := startManager(t, treeProbe(t, "rx7600"), map[string]float64{"small:1b": 1, "big:8b": 8})
	s := m.Snapshot()
	if s.VRAM.Source != card.SourceAMDGPU || s.VRAM.Total != 8*gib || s.Budget != 7*gib {
		t.Fatalf("card %s %d, budget %d; want amdgpu, 8 GiB, 7 GiB", s.VRAM.Source, s.VRAM.Total, s.Budget)
	}
	if s.Others < 3*gib || s.Others > 3*gib+256*mib {
		t.Errorf("other programs %d, want about 3 GiB", s.Others)
	}
	if len(s.Cards) != 1 || s.Cards[0].Name != "AMD Radeon RX 7600" || s.Cards[0].Others != s.Others {
		t.Errorf("cards %+v", s.Cards)
	}
	for _, v := range s.Models {
		if v.Breakdown.Overhead == 0 || v.Breakdown.Graph == 0 {
			t.Errorf("%s: estimate %+v without the GPU's graph and overhead", v.Name, v.Breakdown)
		}
		if v.Card != "" || v.CardCount != 0 {
			t.Errorf("%s: placed on %q (%d) with one card", v.Name, v.Card, v.CardCount)
		}
	}
	big, _ := s.Model("big:8b")
	room := s.VRAM.Total - s.Others - s.Settings.SafetyMargin
	if big.EstimateBytes <= room || big.EstimateBytes > s.Budget {
		t.Fatalf("big:8b needs %d: want more than the %d beside the game and within the %d budget", big.EstimateBytes, room, s.Budget)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := m.Load(ctx, "big:8b", "test"); !errors.Is(err, evict.ErrNoRoom) {
		t.Errorf("loading big:8b beside the game: %v, want %v", err, evict.ErrNoRoom)
	}
	if _, err := m.Load(ctx, "small:1b", "test"); err != nil {
		t.Errorf("loading small:1b: %v", err)
	}
	if got := rt.RunningNames(); len(got) != 1 || got[0] != "small:1b" {
		t.Errorf("running %v, want small:1b alone", got)
	}
}

// Two cards, from the kernel or from NVML: both listed, the budget over
// both, and a model placed where Ollama would put it.
func TestManagerOnTwoCards(t *testing.T) {
	nv8 := device{Name: "NVIDIA GeForce RTX 4060", BusID: "0000:01:00.0", Total: 8 * gib, Used: 300 * mib, Free: 8*gib - 300*mib}
	nv12 := device{Name: "NVIDIA GeForce RTX 3060", BusID: "0000:02:00.0", Total: 12 * gib, Used: 200 * mib, Free: 12*gib - 200*mib}
	twoNVML, _, _ := newTestProbe(&fakeDriver{devs: []device{nv8, nv12}})
	tests := []struct {
		name   string
		probe  *Probe
		source string
		cards  []string
		freest string
	}{
		{"two amdgpu cards", treeProbe(t, "two-amd"), "amdgpu", []string{"AMD Radeon RX 7600", "AMD Radeon RX 6700 XT"}, "AMD Radeon RX 6700 XT"},
		{"two NVML cards", twoNVML, "nvml", []string{nv8.Name, nv12.Name}, nv12.Name},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := startManager(t, tt.probe, map[string]float64{"small:1b": 1, "huge:24b": 24})
			s := m.Snapshot()
			if s.VRAM.Source != tt.source || s.VRAM.Total != 20*gib || s.Budget != 19*gib || len(s.Cards) != 2 {
				t.Fatalf("%s %d, budget %d, %d cards", s.VRAM.Source, s.VRAM.Total, s.Budget, len(s.Cards))
			}
			for i, name := range tt.cards {
				if s.Cards[i].Name != name {
					t.Errorf("card %d is %q, want %q", i, s.Cards[i].Name, name)
				}
			}
			small, _ := s.Model("small:1b")
			if small.Card != tt.freest || small.CardCount != 1 {
				t.Errorf("small:1b placed on %q (%d cards), want %q", small.Card, small.CardCount, tt.freest)
			}
			// Too big for either card alone: split over both, with the
			// driver's context on each.
			huge, _ := s.Model("huge:24b")
			if huge.Card != "" || huge.CardCount != 2 || huge.Breakdown.Overhead != 2*320*mib {
				t.Errorf("huge:24b on %q (%d cards), overhead %d; want both cards, twice the overhead",
					huge.Card, huge.CardCount, huge.Breakdown.Overhead)
			}
		})
	}
}
