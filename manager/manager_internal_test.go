package manager

import "testing"

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
