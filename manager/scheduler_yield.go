package manager

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/evict"
)

// Yield and restore: the card given back (to the user, or to other
// programs that need it) and the models restored afterwards.

// group answers one caller for several ops (yield, restore) once all ended.
type group struct {
	w       *waiter
	why     purpose // yield or restore
	pending int
	done    []string
	errs    []error
}

// yielded is a model unloaded to give the card back, to be restored later.
type yielded struct {
	Name     string    `json:"name"`
	NumCtx   int       `json:"context_length"`
	Bytes    uint64    `json:"bytes"`
	LastUsed time.Time `json:"last_used"`
}

// OnYield gives the whole card back at the user's request: every model of
// ours is unloaded (pinned ones too) and remembered, loads are refused
// until OnRestore, and w is answered once all are off.
func (s *scheduler) OnYield(w *waiter) {
	if s.handedBack {
		s.fx.Reply(w, result{})
		return
	}
	s.handedBack = true
	s.yielded = nil
	s.fx.Changed("")
	defer s.persist()
	// Loads waiting in the queue will not run.
	s.queue = slices.DeleteFunc(s.queue, func(o *op) bool {
		if o.kind() != opLoad {
			return false
		}
		s.answerAll(o, result{err: fmt.Errorf("not loading %s: %w", o.name, ErrYielded)})
		return true
	})
	g := &group{w: w, why: yield}
	unload := func(name string) {
		g.pending++
		s.queue = append(s.queue, &op{id: s.id(), why: yield, name: name, group: g,
			reason: reasonUserYield})
	}
	for name, sl := range s.active {
		if sl.state == Loaded {
			unload(name)
		}
	}
	// A load in flight ends first (one op at a time) and its model goes
	// with the rest, so the answer means the card is free: a script that
	// yields and then starts a game must not race a load.
	if o := s.cur; o != nil && o.kind() == opLoad {
		if md, ok := s.find(o.name); ok && md.state != Loaded {
			unload(md.name)
		}
	}
	if g.pending == 0 {
		s.fx.Reply(w, result{})
	}
	s.pump()
}

// OnRestore loads again what the last yield unloaded, at the same context
// lengths, and lets loads run again; w is answered once all are back.
func (s *scheduler) OnRestore(w *waiter) {
	s.handedBack = false
	s.fx.Changed("")
	g := &group{w: w, why: restore}
	for _, y := range s.yielded {
		if _, ok := s.cat.spec(y.Name); !ok {
			continue // deleted since
		}
		g.pending++
		s.enqueue(&op{why: restore, name: y.Name, numCtx: y.NumCtx, group: g,
			reason: "restored: put back after the GPU was given back"})
	}
	s.yielded = nil
	if g.pending == 0 {
		s.fx.Reply(w, result{})
	}
	s.pump()
}

// yieldedNames are the models waiting to be restored.
func (s *scheduler) yieldedNames() []string {
	var out []string
	for _, y := range s.yielded {
		out = append(out, y.Name)
	}
	return out
}

// giveBack unloads the least useful unpinned models when other programs
// took so much of the card that ours no longer fit beside them.
func (s *scheduler) giveBack() {
	if s.handedBack || s.paused || !s.card.reading().Measured() {
		return
	}
	for _, o := range s.pending() {
		if o.yields() {
			return // one round at a time
		}
	}
	room := s.roomLeft()
	if s.ours() <= room {
		return
	}
	lim := evict.Limits{Budget: room}
	for _, v := range evict.Shed(s.entries(), lim, s.tune.policy) {
		s.queue = append(s.queue, &op{id: s.id(), why: giveBack, name: v.Name,
			reason: fmt.Sprintf("other programs need %s of the card", fmtBytes(s.card.others()))})
	}
}

// restoreReleased restores models given back to other programs once those
// release the memory, with a safety margin to spare so a program that
// wavers does not make them bounce.
func (s *scheduler) restoreReleased() {
	if s.handedBack || len(s.yielded) == 0 || !s.card.reading().Measured() {
		return
	}
	for _, o := range s.pending() {
		if o.yields() {
			return // still giving back
		}
	}
	ours := s.ours()
	free := max(s.roomLeft(), ours) - ours
	keep := s.yielded[:0]
	for _, y := range s.yielded {
		_, listed := s.cat.spec(y.Name)
		switch {
		case !listed || s.slotOf(y.Name).onCard():
		case y.Bytes+s.tune.SafetyMargin <= free:
			free -= y.Bytes
			s.enqueue(&op{why: restore, name: y.Name, numCtx: y.NumCtx,
				reason: "restored: other programs released the memory"})
		default:
			keep = append(keep, y)
		}
	}
	if len(keep) != len(s.yielded) {
		s.fx.Changed("")
	}
	s.yielded = keep
}

// settle counts o as ended in its group, and answers the group's caller
// when it was the last.
func (s *scheduler) settle(o *op, err error) {
	g := o.group
	if g == nil {
		return
	}
	o.group = nil
	if err != nil {
		g.errs = append(g.errs, err)
	} else {
		g.done = append(g.done, o.name)
	}
	if g.pending--; g.pending == 0 {
		r := result{evicted: g.done, err: errors.Join(g.errs...)}
		if g.why == restore {
			r.evicted, r.restored = nil, g.done
		}
		s.fx.Reply(g.w, r)
	}
}
