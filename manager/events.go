package manager

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
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
// to a JSONL file when one is set. Sends never block the owner goroutine: a
// subscriber that falls behind by more than its buffer loses events and is
// told through the dropped count of the next one it gets.
type hub struct {
	mu      sync.Mutex
	subs    map[chan Event]struct{}
	history []Event
	limit   int
	file    string
	log     *slog.Logger
}

func newHub(limit int, file string, log *slog.Logger) *hub {
	h := &hub{subs: map[chan Event]struct{}{}, limit: limit, file: file, log: log}
	h.history = readHistory(file, limit, log)
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
	if h.file != "" {
		if err := appendJSONL(h.file, e); err != nil {
			h.log.Warn("history not saved", "err", err)
		}
	}
}

func (h *hub) recent() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.history...)
}

func appendJSONL(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open history: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("append history: %w", err)
	}
	return f.Close()
}

// readHistory loads the newest limit events; a damaged line is skipped, not
// fatal, so one bad write never loses the rest.
func readHistory(path string, limit int, log *slog.Logger) []Event {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if !os.IsNotExist(err) {
			log.Warn("history not read", "file", path, "err", err)
		}
		return nil
	}
	var out []Event
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			log.Warn("history line skipped", "file", path, "line", i+1, "err", err)
			continue
		}
		out = append(out, e)
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}
