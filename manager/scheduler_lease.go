package manager

import (
	"fmt"
	"time"
)

// Leases: a request's hold on a model, which keeps it from eviction until
// the request releases it.

// lease is one request's hold on a model: it is not evicted while the lease
// lives (up to the busy grace, when one is set). Only Release ends it; a
// poll never does. lost: the server dropped the model on its own, so the
// lease protects nothing any more.
type lease struct {
	model string
	since time.Time
	lost  bool
}

// OnRelease ends a lease; releasing one twice, or one that never was, does
// nothing.
func (s *scheduler) OnRelease(id uint64) {
	if _, ok := s.leases[id]; !ok {
		return
	}
	s.fx.Changed(s.leases[id].model)
	delete(s.leases, id)
	s.pump()
}

// grant takes a lease for w when it asked for one and md is loaded.
func (s *scheduler) grant(w *waiter, md target, r result) result {
	if !w.lease || r.err != nil {
		return r
	}
	if md.state != Loaded {
		r.err = fmt.Errorf("%s was unloaded before it could be used: %w", md.name, ErrLoadFailed)
		return r
	}
	r.lease = s.id()
	s.leases[r.lease] = &lease{model: md.name, since: s.now()}
	s.fx.Changed(md.name)
	return r
}

// busy reports whether live leases hold the model in place: until they
// end, or until the busy grace ends when one is set.
func (s *scheduler) busy(name string) bool {
	now := s.now()
	for _, l := range s.leases {
		if l.model == name && !l.lost && (s.tune.BusyGrace == 0 || now.Sub(l.since) < s.tune.BusyGrace) {
			return true
		}
	}
	return false
}

// holds counts the model's live leases.
func (s *scheduler) holds(name string) int {
	n := 0
	for _, l := range s.leases {
		if l.model == name && !l.lost {
			n++
		}
	}
	return n
}
