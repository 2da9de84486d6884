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
	w       *waiter   // nil: nobody waits (a yield finished after a restart)
	more    []*waiter // callers who joined a yield under way
	why     purpose   // yield or restore
	id      uint64
	pending int
	done    []string
	errs    []error
	// ops: a yield's unloads, held until what it will do is recorded.
	ops []*op
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
// until OnRestore, and w is answered once all are off. What the yield
// will unload is recorded before anything is (OnRecorded), so that a
// crash at any moment leaves a state file that says the card was given
// back and what a restore puts back; a restart finishes the yield.
func (s *scheduler) OnYield(w *waiter) {
	if g := s.yieldGroup; g != nil {
		g.more = append(g.more, w) // answered with the yield under way
		return
	}
	if s.handedBack && !s.yielding {
		s.fx.Reply(w, result{})
		return
	}
	s.handedBack = true
	s.fx.Changed("")
	// Loads waiting in the queue will not run; nor will one that has not
	// begun (prepare refuses loads while the card is given back).
	s.queue = slices.DeleteFunc(s.queue, func(o *op) bool {
		if o.kind() != opLoad {
			return false
		}
		s.answerAll(o, result{err: fmt.Errorf("not loading %s: %w", o.name, ErrYielded)})
		return true
	})
	s.yielded = nil
	s.startYield(w)
}

// startYield records what a yield unloads, and unloads it once that is on
// disk: every model on the card, a load's victims still there, and the
// model whose load runs (it ends first, one op at a time, and goes with
// the rest, so the answer means the card is free: a script that yields
// and then starts a game must not race a load). After a restart it
// finishes a recorded yield: what is on the card now goes too.
func (s *scheduler) startYield(w *waiter) {
	g := &group{w: w, why: yield, id: s.id()}
	add := func(name string, numCtx int, bytes uint64, lastUsed time.Time) {
		if !slices.ContainsFunc(s.yielded, func(y yielded) bool { return y.Name == name }) {
			s.yielded = append(s.yielded, yielded{Name: name, NumCtx: numCtx, Bytes: bytes, LastUsed: lastUsed})
		}
		g.pending++
		g.ops = append(g.ops, &op{id: s.id(), why: yield, name: name, group: g, reason: reasonUserYield})
	}
	cur := s.cur
	if cur != nil && cur.kind() != opLoad {
		cur = nil
	}
	for name, sl := range s.active {
		victim := cur != nil && slices.ContainsFunc(cur.victims, func(v evict.Entry) bool { return v.Name == name })
		if sl.state == Loaded || sl.state == Unloading && victim {
			add(name, sl.loadedCtx, sl.size, sl.lastUsed)
		}
	}
	if cur != nil && cur.loading {
		if md, ok := s.find(cur.name); ok && !md.onCard() {
			add(md.name, cur.numCtx, cur.need, md.lastUsed)
		}
	}
	s.yielding = true
	if g.pending == 0 {
		s.yieldDone(g)
		return
	}
	s.yieldGroup = g
	s.fx.Record(s.saved(), g.id)
}

// OnRecorded: the state file holds what the yield id will do; it acts.
func (s *scheduler) OnRecorded(id uint64, err error) {
	g := s.yieldGroup
	if g == nil || g.id != id || g.ops == nil {
		return
	}
	if err != nil {
		// The disk cannot hold it (the store warned); the user's yield
		// goes ahead all the same.
		s.log.Warn("the yield is not recorded on disk; it goes ahead", "err", err)
	}
	s.queue = append(s.queue, g.ops...)
	g.ops = nil
	s.pump()
}

// resumeYield finishes a yield recorded before a restart, once the server
// has said what is on the card.
func (s *scheduler) resumeYield() {
	if s.yielding && s.yieldGroup == nil {
		s.log.Info("finishing the yield that was under way when VRAM Keeper stopped")
		s.startYield(nil)
	}
}

// yieldDone answers a yield's callers with the models a restore puts back.
func (s *scheduler) yieldDone(g *group) {
	s.yielding, s.yieldGroup = false, nil
	s.persist()
	r := result{evicted: s.yieldedNames(), err: errors.Join(g.errs...)}
	for _, w := range append([]*waiter{g.w}, g.more...) {
		if w != nil {
			s.fx.Reply(w, r)
		}
	}
}

// dropYielded forgets name as a model to restore: it is on the card after
// all (its unload failed), or never came on (its load failed).
func (s *scheduler) dropYielded(name string) {
	s.yielded = slices.DeleteFunc(s.yielded, func(y yielded) bool { return y.Name == name })
}

// OnRestore loads again what the last yield unloaded, at the same context
// lengths, and lets loads run again; w is answered once all are back. A
// yield still under way stops: what it has not unloaded stays.
func (s *scheduler) OnRestore(w *waiter) {
	if g := s.yieldGroup; g != nil {
		// Its unloads not begun are dropped (an unload that runs ends by
		// itself), and its callers answered now.
		g.ops = nil
		s.queue = slices.DeleteFunc(s.queue, func(o *op) bool { return o.group == g })
		s.yieldDone(g)
	}
	s.handedBack, s.yielding = false, false
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
	s.persist() // loads are allowed again, restart or not
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
	if g.pending--; g.pending > 0 {
		return
	}
	switch g.why {
	case yield:
		if s.yieldGroup == g {
			s.yieldDone(g)
		}
	case restore:
		s.fx.Reply(g.w, result{restored: g.done, err: errors.Join(g.errs...)})
	}
}
