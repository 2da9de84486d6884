package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// persisted is what survives a restart: when each model was last used (so
// LRU order holds across restarts) and the measured sizes (calibration).
type persisted struct {
	Models map[string]usage `json:"models"`
	// Calibrations maps "digest@num_ctx" to the bytes the server reported
	// after a real load; it replaces the estimate from then on.
	Calibrations map[string]uint64 `json:"calibrations"`
}

type usage struct {
	LastUsed time.Time `json:"last_used"`
	Uses     int       `json:"uses"`
}

// calibKey names a measured size: the model's digest, the context length
// and the server version, since servers account memory differently.
func calibKey(digest string, numCtx int, version string) string {
	k := digest + "@" + strconv.Itoa(numCtx)
	if version != "" {
		k += "/" + version
	}
	return k
}

func loadPersisted(path string) (persisted, error) {
	p := persisted{Models: map[string]usage{}, Calibrations: map[string]uint64{}}
	if path == "" {
		return p, nil
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		// Keep a copy of the damaged file so nothing is lost; start afresh.
		_ = os.Rename(path, path+".broken")
		return persisted{Models: map[string]usage{}, Calibrations: map[string]uint64{}},
			fmt.Errorf("state file %s is damaged (kept as %s.broken): %w", path, path, err)
	}
	if p.Models == nil {
		p.Models = map[string]usage{}
	}
	if p.Calibrations == nil {
		p.Calibrations = map[string]uint64{}
	}
	return p, nil
}

// catalog maps a model's digest (from the list) to what /api/show said of
// it. A digest names the exact manifest, so the details never go stale;
// keeping them saves a start-up from asking Ollama again for every model,
// which costs tens of milliseconds each.
type catalog map[string]Details

func loadCatalog(path string) (catalog, error) {
	c := catalog{}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read model catalogue: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		// Only a cache: drop it and ask Ollama again.
		return catalog{}, fmt.Errorf("model catalogue %s is damaged, rebuilding it: %w", path, err)
	}
	return c, nil
}

// saveJSON writes v atomically: a temp file renamed over the old one.
func saveJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// store writes the state files from a goroutine of its own, so a slow or
// full disk never stalls a decision. The owner offers the latest values; one
// not yet written is replaced by the newer one. History lines queue up to a
// bound, past which they are dropped with one warning.
type store struct {
	statePath, catalogPath, historyPath string
	state                               chan persisted
	catalog                             chan map[string]Details
	history                             chan Event
	log                                 *slog.Logger
	failing                             map[string]bool // warned once per file until it works again
}

func newStore(dir string, log *slog.Logger) *store {
	s := &store{
		state:   make(chan persisted, 1),
		catalog: make(chan map[string]Details, 1),
		history: make(chan Event, 4096),
		log:     log,
		failing: map[string]bool{},
	}
	if dir != "" {
		s.statePath = filepath.Join(dir, "state.json")
		s.catalogPath = filepath.Join(dir, "catalog.json")
		s.historyPath = filepath.Join(dir, "history.jsonl")
	}
	return s
}

// offer hands v to the writer, replacing a value it has not taken yet.
func offer[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

func (s *store) saveState(p persisted)            { offer(s.state, p) }
func (s *store) saveCatalog(c map[string]Details) { offer(s.catalog, c) }

func (s *store) appendHistory(e Event) {
	select {
	case s.history <- e:
	default:
		s.warn(s.historyPath, fmt.Errorf("the disk is too slow: history entries dropped"))
	}
}

// run writes until ctx ends, then writes what is still pending.
func (s *store) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			s.flush()
			return
		case p := <-s.state:
			s.write(s.statePath, p)
		case c := <-s.catalog:
			s.write(s.catalogPath, c)
		case e := <-s.history:
			s.append(e)
		}
	}
}

func (s *store) flush() {
	for {
		select {
		case p := <-s.state:
			s.write(s.statePath, p)
		case c := <-s.catalog:
			s.write(s.catalogPath, c)
		case e := <-s.history:
			s.append(e)
		default:
			return
		}
	}
}

func (s *store) write(path string, v any) {
	s.result(path, saveJSON(path, v))
}

func (s *store) append(e Event) {
	if s.historyPath == "" {
		return
	}
	s.result(s.historyPath, appendJSONL(s.historyPath, e))
}

// result logs a failing file once, and once more when it works again.
func (s *store) result(path string, err error) {
	if err != nil {
		s.warn(path, err)
		return
	}
	if s.failing[path] {
		delete(s.failing, path)
		s.log.Info("state file written again", "file", path)
	}
}

func (s *store) warn(path string, err error) {
	if s.failing[path] {
		return
	}
	s.failing[path] = true
	s.log.Warn("state not saved; VRAM Keeper keeps running and retries at the next change", "file", path, "err", err)
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
