package manager

import (
	"iter"
	"maps"
	"slices"
	"time"
)

// What others read of the scheduler: values and answers, never its
// records. The owner builds snapshots, samples and the state file from
// these; nothing outside the scheduler writes what it decides on.

// status is the scheduler's state as a value.
type status struct {
	// handedBack: the GPU was given back (Yield); loads wait for Restore.
	handedBack, paused bool
	// idle: no op runs or waits.
	idle bool
	// loading names the model a load runs for, since loadingSince (zero
	// until it started); loadRunning is true from the read before it.
	loading      string
	loadingSince time.Time
	loadRunning  bool
	yielded      int
	budget       uint64
	// ours is what our models hold on the card; room what they may hold
	// with other programs' use.
	ours, room uint64
}

func (s *scheduler) status() status {
	st := status{handedBack: s.handedBack, paused: s.paused, idle: s.cur == nil && len(s.queue) == 0,
		yielded: len(s.yielded), budget: s.budget(), ours: s.ours(), room: s.roomLeft()}
	if o := s.cur; o != nil && o.kind() == opLoad {
		st.loadRunning = true
		if !o.began.IsZero() {
			st.loading, st.loadingSince = o.name, o.began
		}
	}
	return st
}

// record is the scheduler's record of name, as a copy (idle when it has
// none).
func (s *scheduler) record(name string) slot {
	if sl := s.slots[name]; sl != nil {
		return *sl
	}
	return slot{live: live{state: Idle}}
}

// isActive reports whether name is loading, loaded or unloading.
func (s *scheduler) isActive(name string) bool { return s.active[name] != nil }

// onCard are the models on the card (loaded or unloading) and their sizes.
func (s *scheduler) onCard() iter.Seq2[string, uint64] {
	return func(yield func(string, uint64) bool) {
		for name, sl := range s.active {
			if sl.onCard() && !yield(name, sl.size) {
				return
			}
		}
	}
}

// activeNames are the models loading, loaded or unloading.
func (s *scheduler) activeNames() []string {
	return slices.Collect(maps.Keys(s.active))
}

// onGPU reports whether the server put some loaded model on a GPU.
func (s *scheduler) onGPU() bool {
	for _, sl := range s.active {
		if sl.state == Loaded && sl.size > 0 && sl.onGPU {
			return true
		}
	}
	return false
}

// persist hands the state file what the scheduler keeps across restarts.
func (s *scheduler) persist() { s.fx.Persist(s.saved()) }

// saved is the scheduler's part of the state file: each model's use, a
// yield, and the backoffs still running.
func (s *scheduler) saved() persisted {
	p := persisted{Models: map[string]usage{}, HandedBack: s.handedBack, Yielding: s.yielding,
		Yielded: append([]yielded(nil), s.yielded...), Failures: s.failures()}
	for name, sl := range s.slots {
		if sl.uses > 0 || !sl.lastUsed.IsZero() {
			p.Models[name] = usage{LastUsed: sl.lastUsed, Uses: sl.uses}
		}
	}
	return p
}
