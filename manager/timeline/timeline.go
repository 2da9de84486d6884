// Package timeline keeps what the window's chart and `history --plot` show:
// the manager's poll samples (each of our models' bytes, other programs,
// the budget, the card) and marks for what it did (loads, evictions,
// yields), for the last hour. It is a plain value with a lock: no
// goroutines, the manager calls Add on each poll and Mark on each decision.
package timeline

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// Defaults: an hour of samples at the manager's 2 s poll.
const (
	DefaultSpan     = time.Hour
	DefaultPoll     = 2 * time.Second
	DefaultCapacity = int(DefaultSpan / DefaultPoll)
)

// Sample is one poll of the card.
type Sample struct {
	Time time.Time `json:"time"`
	// Models are the bytes each of our loaded models holds, by name.
	Models map[string]uint64 `json:"models,omitempty"`
	// Others is what other programs hold (0 when the source is estimated).
	Others uint64 `json:"others_bytes"`
	Budget uint64 `json:"budget_bytes"`
	Total  uint64 `json:"total_bytes"`
	// Source is "nvml" when the driver answered, "estimated" otherwise.
	Source string `json:"source,omitempty"`
}

// Ours is what our models hold together (at most the largest uint64: a
// broken sender's sizes do not wrap around to small ones).
func (s Sample) Ours() uint64 {
	var n uint64
	for _, b := range s.Models {
		if n > math.MaxUint64-b {
			return math.MaxUint64
		}
		n += b
	}
	return n
}

// MarkKind names what a mark stands for.
type MarkKind string

const (
	MarkLoad       MarkKind = "load"
	MarkEviction   MarkKind = "eviction"
	MarkUnload     MarkKind = "unload"
	MarkFailedLoad MarkKind = "failed_load"
	MarkYield      MarkKind = "yield"
	MarkRestore    MarkKind = "restore"
)

// MarkKinds lists every kind, in the order legends show them.
var MarkKinds = []MarkKind{MarkLoad, MarkEviction, MarkUnload, MarkFailedLoad, MarkYield, MarkRestore}

// Mark is one thing the manager did at a moment.
type Mark struct {
	Time  time.Time `json:"time"`
	Kind  MarkKind  `json:"kind"`
	Model string    `json:"model,omitempty"`
}

// Window is the samples and marks of a stretch of time, oldest first.
type Window struct {
	Samples []Sample `json:"samples"`
	Marks   []Mark   `json:"marks"`
}

// Models returns every model name the window's samples hold, sorted.
func (w Window) Models() []string {
	seen := map[string]bool{}
	for _, s := range w.Samples {
		for name := range s.Models {
			seen[name] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Latest is the time of the newest sample or mark, zero when there is none.
func (w Window) Latest() time.Time {
	var t time.Time
	if n := len(w.Samples); n > 0 {
		t = w.Samples[n-1].Time
	}
	if n := len(w.Marks); n > 0 && w.Marks[n-1].Time.After(t) {
		t = w.Marks[n-1].Time
	}
	return t
}

// Ring keeps the newest samples and marks: at most capacity of each, none
// older than span before the newest. It is safe for concurrent use, and
// what it returns are copies.
type Ring struct {
	mu      sync.Mutex
	span    time.Duration
	latest  time.Time
	samples series[Sample]
	marks   series[Mark]
}

// New returns a ring of capacity samples (and as many marks) covering span;
// zero or negative values take the defaults (an hour at a 2 s poll).
func New(capacity int, span time.Duration) *Ring {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	if span <= 0 {
		span = DefaultSpan
	}
	return &Ring{
		span: span,
		samples: series[Sample]{
			limit: capacity,
			at:    func(s Sample) time.Time { return s.Time },
			// One poll per instant: a sample at the same time replaces it.
			same: func(a, b Sample) bool { return true },
		},
		marks: series[Mark]{
			limit: capacity,
			at:    func(m Mark) time.Time { return m.Time },
			same:  func(a, b Mark) bool { return a.Kind == b.Kind && a.Model == b.Model },
		},
	}
}

// Add records a sample. Samples may come out of order (a merge of two
// reads); they are kept in time order, and one at the time of a kept
// sample replaces it.
func (r *Ring) Add(s Sample) error {
	if s.Time.IsZero() {
		return fmt.Errorf("timeline: sample without a time (others %d B, budget %d B)", s.Others, s.Budget)
	}
	s.Models = maps.Clone(s.Models)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples.add(s)
	r.advance(s.Time)
	return nil
}

// Mark records a mark; the same kind for the same model at the same time
// is recorded once.
func (r *Ring) Mark(m Mark) error {
	if m.Time.IsZero() {
		return fmt.Errorf("timeline: %s mark for %q without a time", m.Kind, m.Model)
	}
	if !slices.Contains(MarkKinds, m.Kind) {
		return fmt.Errorf("timeline: unknown mark kind %q for %q at %s", m.Kind, m.Model, m.Time.Format(time.RFC3339))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.marks.add(m)
	r.advance(m.Time)
	return nil
}

// Merge adds a window's samples and marks, as read from another process;
// entries it holds already are not repeated. It returns the first error
// and keeps the rest.
func (r *Ring) Merge(w Window) error {
	var first error
	for _, s := range w.Samples {
		if err := r.Add(s); err != nil && first == nil {
			first = err
		}
	}
	for _, m := range w.Marks {
		if err := r.Mark(m); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// advance drops what fell out of the span once t is the newest time seen.
func (r *Ring) advance(t time.Time) {
	if t.After(r.latest) {
		r.latest = t
	}
	cut := r.latest.Add(-r.span)
	r.samples.dropBefore(cut)
	r.marks.dropBefore(cut)
}

// Since returns the samples and marks strictly after t (all of them for a
// zero t), oldest first. The slices are never nil, so the JSON form is
// [] and not null.
func (r *Ring) Since(t time.Time) Window {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := Window{Samples: r.samples.after(t), Marks: r.marks.after(t)}
	for i := range w.Samples {
		w.Samples[i].Models = maps.Clone(w.Samples[i].Models)
	}
	return w
}

// series is a time-ordered buffer: items[start:] are live; the dead head is
// cut off once it is as long as the limit, so adds cost O(1) amortised.
type series[T any] struct {
	items []T
	start int
	limit int
	at    func(T) time.Time
	// same reports whether two items at the same time are one.
	same func(a, b T) bool
}

func (s *series[T]) add(v T) {
	t := s.at(v)
	i := len(s.items)
	for i > s.start && s.at(s.items[i-1]).After(t) {
		i--
	}
	for j := i - 1; j >= s.start && s.at(s.items[j]).Equal(t); j-- {
		if s.same(s.items[j], v) {
			s.items[j] = v
			return
		}
	}
	s.items = slices.Insert(s.items, i, v)
	if len(s.items)-s.start > s.limit {
		s.drop(1)
	}
}

func (s *series[T]) dropBefore(t time.Time) {
	n := 0
	for s.start+n < len(s.items) && s.at(s.items[s.start+n]).Before(t) {
		n++
	}
	s.drop(n)
}

func (s *series[T]) drop(n int) {
	var zero T
	for range n {
		s.items[s.start] = zero // let the maps go
		s.start++
	}
	if s.start >= s.limit {
		s.items = slices.Delete(s.items, 0, s.start)
		s.start = 0
	}
}

func (s *series[T]) after(t time.Time) []T {
	live := s.items[s.start:]
	i := sort.Search(len(live), func(i int) bool { return s.at(live[i]).After(t) })
	return append(make([]T, 0, len(live)-i), live[i:]...)
}
