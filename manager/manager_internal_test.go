package manager

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// A snapshot once published stays as it was, read before or after the
// next one is published: views are shared between snapshots, never
// changed in place. The next one shows the change: a model's holds, and
// the largest context that fits after another program took memory.
func TestPublishedSnapshotsStayAsTheyWere(t *testing.T) {
	o := newOwnerBench(t, 200)
	m := o.m
	first := m.snap.Load() // not read until the next one is published
	w := newWaiter(true)
	m.step(evLoad{w: w, name: o.loaded, reason: "test"})
	lease := (<-w.reply).lease
	m.step(o.poll(3 << 30)) // another program takes 2 GiB more
	second := m.snap.Load()
	if first == second {
		t.Fatal("no new snapshot for a lease and a smaller room")
	}
	a, b := first.snapshot(), second.snapshot()
	va, _ := a.Model(o.loaded)
	vb, _ := b.Model(o.loaded)
	if va.InFlight != 0 || vb.InFlight != 1 {
		t.Errorf("in flight: first %d (want 0), second %d (want 1)", va.InFlight, vb.InFlight)
	}
	moved := 0
	for i := range a.Models {
		if a.Models[i].MaxFitCtx != b.Models[i].MaxFitCtx {
			moved++
		}
		if a.Models[i].MaxFitCtx < b.Models[i].MaxFitCtx {
			t.Errorf("%s: largest context that fits grew from %d to %d with less room", a.Models[i].Name, a.Models[i].MaxFitCtx, b.Models[i].MaxFitCtx)
		}
	}
	if moved == 0 {
		t.Error("2 GiB less room moved no model's largest context that fits")
	}
	m.step(evRelease{lease})
	if v, _ := m.Snapshot().Model(o.loaded); v.InFlight != 0 {
		t.Errorf("after the release, in flight %d", v.InFlight)
	}
}

// A subscriber that reads the snapshot when an event comes sees what the
// event reports (a window redraws from it): the owner sends the events of
// a step after the snapshot that shows them. A first run plays here:
// Ollama down at the start, then answering, with no models, one
// downloaded; then changes made elsewhere, which the window shows on
// their event, not at its next poll.
func TestEventsComeAfterTheSnapshotThatShowsThem(t *testing.T) {
	m, err := New(Options{Runtime: idleRuntime{}, GPU: idleRuntime{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	m.spawn = func(func(context.Context)) {} // the steps are played here
	sub, unsubscribe := m.Subscribe(16)
	defer unsubscribe()
	for _, tc := range []struct {
		what  string
		ev    any
		kind  EventKind
		shows func(Snapshot) bool
	}{
		{"Ollama down at the start", evPolled{err: ErrUnreachable}, EventOllamaDown,
			func(s Snapshot) bool { return !s.OllamaUp && s.RuntimeErr != "" }},
		{"Ollama answers", evPolled{version: "0.17.4"}, EventOllamaUp,
			func(s Snapshot) bool { return s.OllamaUp && s.Version == "0.17.4" }},
		{"the first listing, of no models", evListed{}, EventModelsChange,
			func(s Snapshot) bool { return s.Discovered && len(s.Models) == 0 }},
		{"a model downloaded", evListed{results: []shown{{inst: serving.Installed{Name: "a:1b", Digest: "sha256:a"}, listed: true}}}, EventModelsChange,
			func(s Snapshot) bool { return len(s.Models) == 1 }},
		// Made by another client (the tray's menu, the command line):
		{"pinned", evPin{name: "a:1b", pinned: true, reply: make(chan error, 1)}, EventSettings,
			func(s Snapshot) bool { v, _ := s.Model("a:1b"); return v.Pinned }},
		{"paused", evPause{paused: true, reply: make(chan error, 1)}, EventSettings,
			func(s Snapshot) bool { return s.Paused }},
		{"a setting", evApply{f: func(s *Settings) { s.NumCtx = 8192 }, reply: make(chan error, 1)}, EventSettings,
			func(s Snapshot) bool { return s.Settings.NumCtx == 8192 }},
	} {
		m.handle(tc.ev)
		if n := len(sub); n != 0 {
			t.Errorf("%s: %d events out before the snapshot", tc.what, n)
		}
		m.settled(false)
		var kinds []EventKind
		for len(sub) > 0 {
			kinds = append(kinds, (<-sub).Kind) // with the card's readings
		}
		if !slices.Contains(kinds, tc.kind) {
			t.Errorf("%s: events %v, want a %s", tc.what, kinds, tc.kind)
		}
		if s := m.Snapshot(); !tc.shows(s) {
			t.Errorf("%s: the snapshot at its event does not show it: up %v (%q), version %q, discovered %v, %d models",
				tc.what, s.OllamaUp, s.RuntimeErr, s.Version, s.Discovered, len(s.Models))
		}
	}
}
