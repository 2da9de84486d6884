package manager

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/journal"
)

// EventKind names what happened.
type EventKind string

const (
	EventLoadStarted  EventKind = "load_started"
	EventLoaded       EventKind = "loaded"
	EventUnloaded     EventKind = "unloaded"
	EventEvicted      EventKind = "evicted"
	EventLoadFailed   EventKind = "load_failed"
	EventVRAM         EventKind = "vram"
	EventOllamaDown   EventKind = "ollama_down"
	EventOllamaUp     EventKind = "ollama_up"
	EventModelsChange EventKind = "models_changed"
)

// Event is one thing that happened, as subscribers and the history see it.
type Event struct {
	Time  time.Time `json:"time"`
	Kind  EventKind `json:"kind"`
	Model string    `json:"model,omitempty"`
	// For names the model an eviction made room for.
	For      string        `json:"for,omitempty"`
	Reason   string        `json:"reason,omitempty"`
	Bytes    uint64        `json:"bytes,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// historic reports whether an event belongs in the history (vram readings
// and catalogue changes are too frequent and carry no decision).
func (e Event) historic() bool {
	switch e.Kind {
	case EventVRAM, EventModelsChange, EventLoadStarted:
		return false
	}
	return true
}

func (e Event) String() string {
	s := fmt.Sprintf("%s %s", e.Kind, e.Model)
	if e.For != "" {
		s += " for " + e.For
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Error != "" {
		s += ": " + e.Error
	}
	return s
}

// hub fans events out to subscribers and keeps a bounded history, appended
// to a journal (rotated at a size cap) when one is set. Sends never block the owner goroutine: a
// subscriber that falls behind by more than its buffer loses events and is
// told through the dropped count of the next one it gets.
type hub struct {
	mu      sync.Mutex
	subs    map[chan Event]struct{}
	history []Event
	limit   int
	journal *journal.Journal[Event] // nil: nothing kept on disk
	log     *slog.Logger
}

func newHub(limit int, file string, log *slog.Logger) *hub {
	h := &hub{subs: map[chan Event]struct{}{}, limit: limit, log: log}
	if file != "" {
		h.journal = journal.Open[Event](file, journal.Options{Log: log})
		h.history = readHistory(h.journal, limit, log)
	}
	return h
}

func (h *hub) subscribe(buf int) (<-chan Event, func()) {
	ch := make(chan Event, buf)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.mu.Unlock()
			close(ch)
		})
	}
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			h.log.Warn("event subscriber is behind; event dropped", "event", e.Kind)
		}
	}
	if !e.historic() {
		return
	}
	h.history = append(h.history, e)
	if over := len(h.history) - h.limit; over > 0 {
		h.history = append(h.history[:0:0], h.history[over:]...)
	}
	if h.journal != nil {
		// A full or read-only disk is logged once by the journal; the
		// history stays in memory.
		_ = h.journal.Append(e)
	}
}

func (h *hub) recent() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.history...)
}

// readHistory loads the newest limit events, oldest first, reading the
// journal from its end; damaged lines are skipped and counted, so one bad
// write never loses the rest.
func readHistory(j *journal.Journal[Event], limit int, log *slog.Logger) []Event {
	recent, skipped, err := j.Newest(limit)
	if err != nil {
		log.Warn("history not read whole", "file", j.Path(), "err", err)
	}
	if skipped > 0 {
		log.Warn("history lines skipped: damaged (a write cut short, or a bad disk block)", "file", j.Path(), "lines", skipped)
	}
	slices.Reverse(recent)
	return recent
}
