package manager

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/timeline"
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
	// EventUnloadedByOllama: a model left the card without an unload of
	// ours (ollama stop, another client, Ollama's own eviction, a restart).
	EventUnloadedByOllama EventKind = "unloaded_by_ollama"
	// EventYielded: a model unloaded to give the card back (other programs
	// needed it, or the user asked); EventRestored: put back afterwards.
	EventYielded  EventKind = "yielded"
	EventRestored EventKind = "restored"
	// EventSpilled: Ollama put part of a model on the CPU.
	EventSpilled EventKind = "spilled"
	// EventPulled: a model was downloaded through VRAM Keeper (Bytes: its
	// files' size).
	EventPulled EventKind = "pulled"
	// EventSettings: the settings, a pin or the pause changed (Reason
	// says which), from whichever client: the others show it at once.
	EventSettings EventKind = "settings_changed"
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

// Historic reports whether an event belongs in the history (vram readings,
// catalogue and settings changes are too frequent and carry no decision).
func (e Event) Historic() bool {
	switch e.Kind {
	case EventVRAM, EventModelsChange, EventLoadStarted, EventSettings:
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

// hub fans events out to subscribers and keeps the newest ones in memory.
// Publishing never blocks: a subscriber whose buffer is full has fallen
// behind and is dropped (its channel closed, one log line), so one stuck
// reader costs neither the owner goroutine nor the other subscribers.
type hub struct {
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	history []Event
	limit   int
	log     *slog.Logger
}

type subscriber struct {
	ch     chan Event
	closed bool // under hub.mu
}

func newHub(limit int, history []Event, log *slog.Logger) *hub {
	if len(history) > limit {
		history = history[len(history)-limit:]
	}
	for i := range history { // written before events were bounded
		history[i] = history[i].bounded()
	}
	return &hub{subs: map[*subscriber]struct{}{}, limit: limit, history: history, log: log}
}

func (h *hub) subscribe(buf int) (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, buf)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.drop(s)
	}
}

// drop ends a subscription once; h.mu is held.
func (h *hub) drop(s *subscriber) {
	if s.closed {
		return
	}
	s.closed = true
	delete(h.subs, s)
	close(s.ch)
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- e:
		default:
			h.drop(s)
			h.log.Warn("event subscriber fell behind; dropped it", "buffer", cap(s.ch))
		}
	}
	if !e.Historic() {
		return
	}
	// The oldest go in batches, when twice the limit is held: an event
	// costs the same however long the history.
	h.history = append(h.history, e)
	if len(h.history) >= 2*h.limit {
		h.history = append(h.history[:0:0], h.history[len(h.history)-h.limit:]...)
	}
}

// stop ends every subscription (the manager stopped).
func (h *hub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.drop(s)
	}
}

func (h *hub) recent() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.history[max(0, len(h.history)-h.limit):]...)
}

// emit records an event; subscribers get it after the next publish
// (flushReplies), with the snapshot that shows it already out.
func (m *Manager) emit(e Event) {
	e = e.bounded()
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	m.log.Info("event", "kind", e.Kind, "model", e.Model, "for", e.For, "reason", e.Reason, "bytes", e.Bytes, "err", e.Error)
	m.outbox = append(m.outbox, e)
	m.observe(e)
	if e.Historic() {
		m.store.appendHistory(e)
	}
	if k, ok := markKinds[e.Kind]; ok {
		_ = m.timeline.Mark(timeline.Mark{Time: e.Time, Kind: k, Model: e.Model})
	}
}

// markKinds are the events the chart marks.
var markKinds = map[EventKind]timeline.MarkKind{
	EventLoaded: timeline.MarkLoad, EventEvicted: timeline.MarkEviction, EventUnloaded: timeline.MarkUnload,
	EventUnloadedByOllama: timeline.MarkUnload, EventLoadFailed: timeline.MarkFailedLoad,
	EventYielded: timeline.MarkYield, EventRestored: timeline.MarkRestore,
}
