package manager

import (
	"fmt"
	"slices"

	"github.com/vramkeeper/vramkeeper/manager/evict"
)

// Making room: the limits a load must keep, what the models on the card
// leave for it, and which of them go when they no longer fit.

// OnSettings re-plans with new settings (the owner re-evaluated the
// catalogue): a smaller budget sheds models at once, and a model whose
// context length changed is loaded again at the new one. was holds each
// model's context length before the change.
func (s *scheduler) OnSettings(t tuning, was map[string]int) {
	s.tune = t
	for name, sl := range s.active {
		old, ok := was[name]
		sp, listed := s.cat.spec(name)
		if ok && listed && old != sp.numCtx && sl.state == Loaded && !sp.ctxAuto && sl.loadedCtx != sp.numCtx {
			s.enqueue(&op{why: reload, name: name, numCtx: sp.numCtx,
				reason: fmt.Sprintf("context length changed from %d to %d", sl.loadedCtx, sp.numCtx)})
		}
	}
	s.shed("over the new budget")
	s.pump()
}

// shed queues evictions when what is loaded no longer fits the limits.
func (s *scheduler) shed(why string) {
	for _, o := range s.pending() {
		if o.conditional() {
			return // one round at a time; the next poll looks again
		}
	}
	victims := evict.Shed(s.entries(), s.shedLimits(), s.tune.policy)
	if len(victims) == 0 || s.paused {
		return
	}
	if why == "" {
		why = "over the limits"
	}
	for _, v := range victims {
		s.queue = append(s.queue, &op{id: s.id(), why: shed, name: v.Name,
			reason: fmt.Sprintf("%s: %s of ours loaded, budget %s, %s", why, fmtBytes(s.ours()), fmtBytes(s.budget()), s.countLimit())})
	}
}

// ours is what the models on the card occupy, as the server reports them.
func (s *scheduler) ours() uint64 {
	var n uint64
	for _, sl := range s.active {
		if sl.onCard() {
			n += sl.size
		}
	}
	return n
}

// roomLeft is what our models may hold with other programs' use: the card
// less theirs and the safety margin, never more than the budget.
func (s *scheduler) roomLeft() uint64 {
	v := s.card.reading()
	budget := s.budget()
	if !v.Measured() || v.Total == 0 {
		return budget
	}
	taken := s.card.others() + s.tune.SafetyMargin
	return min(budget, max(v.Total, taken)-taken)
}

// roomFor is what md may take with the models that stay loaded: the
// budget less every loaded model but md and those the model-count limit
// forces out anyway, and never more than the card has free.
func (s *scheduler) roomFor(md target) uint64 {
	loaded := slices.DeleteFunc(s.entries(), func(e evict.Entry) bool { return e.Name == md.name })
	forced := 0
	if n := s.maxLoaded(); n > 0 {
		forced = max(0, len(loaded)+1-n)
	}
	var staying, leaving uint64
	gone := map[string]bool{}
	for _, e := range evict.Order(loaded, s.tune.policy)[:min(forced, len(evict.Order(loaded, s.tune.policy)))] {
		gone[e.Name] = true
	}
	for _, e := range loaded {
		if gone[e.Name] {
			leaving += e.Bytes
		} else {
			staying += e.Bytes
		}
	}
	room := s.limits().Budget
	room = max(room, staying) - staying
	if lim := s.limits(); lim.HasDevice {
		dev := lim.DeviceRoom + leaving
		if md.state == Loaded {
			dev += md.size
		}
		room = min(room, dev)
	}
	return room
}

// touch records a use of md now.
func (s *scheduler) touch(md target) {
	now := s.now()
	md.lastUsed = now
	md.uses++
	s.fx.Used(md.name)
	// The policy sees the previous credit and this use's time: LRFU decays
	// the old count to now, GDSF adds to the clock.
	// The entry is the scheduler's: one made here would escape to the
	// heap through the interface call, on every request.
	e := &s.touched
	*e = evict.Entry{Name: md.name, Bytes: md.size, Uses: md.uses, LastUsed: now, Credit: md.credit}
	s.tune.policy.Touch(e, s.clock)
	md.credit = e.Credit
}

// maxLoaded is the model-count limit for the eviction policy: 0 for none.
func (s *scheduler) maxLoaded() int { return max(s.tune.MaxLoaded, 0) }

func (s *scheduler) countLimit() string {
	if n := s.maxLoaded(); n > 0 {
		return fmt.Sprintf("at most %d models", n)
	}
	return "no model-count limit"
}

// budget resolves the configured budget against the card's size.
func (s *scheduler) budget() uint64 { return s.tune.Budget.Budget(s.card.reading().Total) }

// limits are the bounds for the next load.
func (s *scheduler) limits() evict.Limits {
	lim := evict.Limits{Budget: s.budget(), MaxLoaded: s.maxLoaded()}
	if v := s.card.reading(); v.Measured() {
		lim.HasDevice = true
		if v.Free > s.tune.SafetyMargin {
			lim.DeviceRoom = v.Free - s.tune.SafetyMargin
		}
	}
	return lim
}

// shedLimits are the bounds what is loaded must keep.
func (s *scheduler) shedLimits() evict.Limits {
	return evict.Limits{Budget: s.budget(), MaxLoaded: s.maxLoaded()}
}

// entries are the loaded models as the eviction policy sees them.
func (s *scheduler) entries() []evict.Entry {
	var out []evict.Entry
	for name, sl := range s.active {
		if sl.state != Loaded {
			continue
		}
		sp, _ := s.cat.spec(name)
		out = append(out, evict.Entry{
			Name: name, Bytes: sl.size, LastUsed: sl.lastUsed, Uses: sl.uses,
			Credit: sl.credit, Pinned: sp.pinned, Busy: s.busy(name),
		})
	}
	return out
}
