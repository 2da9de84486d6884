package manager

import (
	"errors"
	"slices"
	"testing"
)

// Yields that crash, and loads that would slip into one (issue 20): a
// kill -9 at any moment of a yield left handed_back with an empty or
// partial list, and a model began loading 17 s into a yield.

// yieldRig is a rig with a and b loaded (b at a context of its own) and
// room for c.
func yieldRig(t *testing.T, set Settings) *rig {
	t.Helper()
	r := newRig(t, set, map[string]uint64{"a": 2 * gib, "b": 1 * gib, "c": 1 * gib})
	r.loadThrough("a")
	wb := newWaiter(false)
	r.s.OnLoad(wb, "b", "test", 8192)
	r.refresh()
	r.loaded(nil)
	r.reply(wb)
	return r
}

func sortedYielded(s *scheduler) []string { return slices.Sorted(slices.Values(s.yieldedNames())) }

// TestYieldRecordedBeforeItActs: the state file holds the whole yield (the
// card given back, every model it unloads, at its context) before the
// first unload is asked for; once all are off it says the yield is done.
func TestYieldRecordedBeforeItActs(t *testing.T) {
	r := yieldRig(t, Settings{})
	y := newWaiter(false)
	r.s.OnYield(y)
	if len(r.fx.unloads)+len(r.fx.reads) != 0 {
		t.Fatalf("the yield acted before it was recorded: reads %v, unloads %v", r.fx.reads, r.fx.unloads)
	}
	p := r.fx.saved
	ctxs := map[string]int{}
	for _, y := range p.Yielded {
		ctxs[y.Name] = y.NumCtx
	}
	if !p.HandedBack || !p.Yielding || len(ctxs) != 2 || ctxs["a"] != 4096 || ctxs["b"] != 8192 {
		t.Fatalf("recorded before acting: %+v, want handed back, yielding, a at 4096 and b at 8192", p)
	}
	r.recorded()
	for range 2 {
		r.refresh()
		r.unloaded(nil)
	}
	res := r.reply(y)
	if slices.Sort(res.evicted); res.err != nil || !slices.Equal(res.evicted, []string{"a", "b"}) {
		t.Fatalf("yield: %+v", res)
	}
	if p := r.fx.saved; !p.HandedBack || p.Yielding || len(p.Yielded) != 2 {
		t.Fatalf("once done: %+v, want handed back, done, two to restore", p)
	}
}

// TestCrashAtAnyMomentOfAYield: the kill -9 at every step of a yield,
// then a restart from the state file as it was, against the card as it
// was: once the server has been read, the yield is finished, the card is
// empty, status says it is given back with both models to restore, and a
// restore puts both back at their contexts.
func TestCrashAtAnyMomentOfAYield(t *testing.T) {
	for crashAfter := 0; crashAfter <= 4; crashAfter++ {
		r := yieldRig(t, Settings{})
		r.s.OnYield(newWaiter(false))
		// The steps: recorded, read, first unload, read, second unload.
		steps := []func(){r.recorded, r.refresh, func() { r.unloaded(nil) }, r.refresh, func() { r.unloaded(nil) }}
		for _, step := range steps[:crashAfter] {
			step()
		}
		saved, card := r.fx.saved, r.onCard // what the disk and the server hold at the crash

		again := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib, "b": 1 * gib, "c": 1 * gib})
		again.onCard = card
		again.s = newScheduler(&again.cat, &again.conn, again.tune, again.fx, again.s.now, again.s.log, saved)
		if !again.s.handedBack || !slices.Equal(sortedYielded(again.s), []string{"a", "b"}) {
			t.Fatalf("crash after %d steps: restarted handed back %v with %v to restore", crashAfter, again.s.handedBack, again.s.yieldedNames())
		}
		again.poll() // the first poll finds what is still on the card
		if len(card) > 0 {
			again.recorded()
		}
		for len(again.fx.reads)+len(again.fx.unloads) > 0 {
			if len(again.fx.reads) > 0 {
				again.refresh()
			} else {
				again.unloaded(nil)
			}
		}
		if len(again.onCard) != 0 || again.s.yielding || !again.fx.saved.HandedBack || again.fx.saved.Yielding && len(card) > 0 {
			t.Fatalf("crash after %d steps: after the restart the card holds %v (yielding %v, saved %+v)", crashAfter, again.onCard, again.s.yielding, again.fx.saved)
		}
		if got := sortedYielded(again.s); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("crash after %d steps: status would say %v to restore, want a and b", crashAfter, got)
		}
		w := newWaiter(false)
		again.s.OnRestore(w)
		ctxs := map[string]int{}
		for range 2 {
			again.refresh()
			l := again.loaded(nil)
			ctxs[l.req.Name] = l.req.NumCtx
		}
		if res := again.reply(w); res.err != nil || len(res.restored) != 2 || ctxs["a"] != 4096 || ctxs["b"] != 8192 {
			t.Fatalf("crash after %d steps: restore %+v at %v, want a at 4096 and b at 8192", crashAfter, res, ctxs)
		}
	}
}

// TestCrashBeforeTheYieldIsRecorded: the yield had not touched the card;
// the state file says nothing of it, and the card agrees.
func TestCrashBeforeTheYieldIsRecorded(t *testing.T) {
	r := yieldRig(t, Settings{})
	before := r.fx.saved
	r.s.OnYield(newWaiter(false)) // the Record is not on disk yet
	if len(r.onCard) != 2 || len(r.fx.unloads) != 0 {
		t.Fatalf("before the record: card %v, unloads %v", r.onCard, r.fx.unloads)
	}
	s := newScheduler(&r.cat, &r.conn, r.tune, &recorder{}, r.s.now, r.s.log, before)
	if s.handedBack || len(s.yieldedNames()) != 0 {
		t.Fatalf("restarted from the state before the yield: handed back %v, to restore %v", s.handedBack, s.yieldedNames())
	}
}

// TestNothingLoadsDuringAYield: whatever queued a load, none is asked of
// the server once the card is given back: a request that waits, one whose
// server read is under way, one making room (its victim's unload in
// flight), a put-back after a failed load. Each fails saying the GPU was
// given back, and what was on the card when the yield came is what a
// restore puts back.
func TestNothingLoadsDuringAYield(t *testing.T) {
	t.Run("a request reading the server", func(t *testing.T) {
		r := yieldRig(t, Settings{})
		w := r.load("c", false) // reads the server first
		y := newWaiter(false)
		r.s.OnYield(y)
		r.recorded()
		r.refresh() // c's read comes back
		if res := r.reply(w); !errors.Is(res.err, ErrYielded) {
			t.Fatalf("c's request: %+v, want refused as yielded", res)
		}
		drain(r)
		if len(r.fx.loads) != 0 || len(r.onCard) != 0 || !slices.Equal(sortedYielded(r.s), []string{"a", "b"}) {
			t.Fatalf("loads %v, card %v, to restore %v", r.fx.loads, r.onCard, r.s.yieldedNames())
		}
		if res := r.reply(y); !slices.Equal(slices.Sorted(slices.Values(res.evicted)), []string{"a", "b"}) {
			t.Fatalf("the yield says %v were unloaded, the restore would put back %v", res.evicted, r.s.yieldedNames())
		}
	})
	t.Run("a load making room", func(t *testing.T) {
		r := yieldRig(t, Settings{MaxLoaded: 2})
		w := r.load("c", false)
		r.refresh() // c starts: a victim is unloaded first
		if len(r.fx.unloads) != 1 {
			t.Fatalf("unloads %v, want one victim", r.fx.unloads)
		}
		victim := r.fx.unloads[0].name
		y := newWaiter(false)
		r.s.OnYield(y)
		r.recorded()
		r.unloaded(nil) // the victim is off; c would load now
		if res := r.reply(w); !errors.Is(res.err, ErrYielded) {
			t.Fatalf("c's request: %+v, want refused as yielded", res)
		}
		drain(r)
		if len(r.fx.loads) != 0 || len(r.onCard) != 0 {
			t.Fatalf("loads %v, card %v: c loaded during the yield", r.fx.loads, r.onCard)
		}
		if got := sortedYielded(r.s); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("to restore %v, want a and b (%s was on the card when the yield came)", got, victim)
		}
		if res := r.reply(y); !slices.Equal(slices.Sorted(slices.Values(res.evicted)), []string{"a", "b"}) {
			t.Fatalf("the yield says %v", res.evicted)
		}
	})
	t.Run("a put-back after a failed load", func(t *testing.T) {
		r := yieldRig(t, Settings{MaxLoaded: 2})
		w := r.load("c", false)
		r.refresh()
		r.unloaded(nil) // the victim
		y := newWaiter(false)
		r.s.OnYield(y) // c loads: it ends first
		r.recorded()
		r.loaded(errors.New("out of memory")) // and fails: its victim would be put back
		if res := r.reply(w); res.err == nil {
			t.Fatal("c's failed load answered no error")
		}
		drain(r)
		if len(r.fx.loads) != 0 || len(r.onCard) != 0 {
			t.Fatalf("loads %v, card %v: a put-back loaded during the yield", r.fx.loads, r.onCard)
		}
		if got := sortedYielded(r.s); slices.Contains(got, "c") {
			t.Fatalf("to restore %v: c never came on", got)
		}
	})
	t.Run("a second yield joins the first", func(t *testing.T) {
		r := yieldRig(t, Settings{})
		first, second := newWaiter(false), newWaiter(false)
		r.s.OnYield(first)
		r.s.OnYield(second)
		if r.answered(second) {
			t.Fatal("the second yield answered while the card is not free")
		}
		r.recorded()
		drain(r)
		a, b := r.reply(first), r.reply(second)
		if len(a.evicted) != 2 || !slices.Equal(slices.Sorted(slices.Values(a.evicted)), slices.Sorted(slices.Values(b.evicted))) {
			t.Fatalf("first %+v, second %+v: want both told the same two models", a, b)
		}
	})
}

// drain answers every read and unload the scheduler asks for until it asks
// for none; a load fails the test (none may run during a yield).
func drain(r *rig) {
	r.t.Helper()
	for len(r.fx.reads)+len(r.fx.unloads) > 0 {
		if len(r.fx.reads) > 0 {
			r.refresh()
		} else {
			r.unloaded(nil)
		}
		if len(r.fx.loads) > 0 {
			r.t.Fatalf("a load was asked for during a yield: %v", r.fx.loads)
		}
	}
}
