package manager

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/journal"
	"github.com/vramkeeper/vramkeeper/manager/statefile"
)

// persisted is what survives a restart: when each model was last used (so
// LRU order holds across restarts) and the measured sizes (calibration).
type persisted struct {
	Models map[string]usage `json:"models"`
	// Calibrations maps "digest@num_ctx" to the bytes the server reported
	// after a real load; it replaces the estimate from then on.
	Calibrations map[string]uint64 `json:"calibrations"`
	// HandedBack and Yielded keep a yield across a restart: loads stay
	// refused and the models wait for Restore.
	HandedBack bool      `json:"handed_back,omitempty"`
	Yielded    []yielded `json:"yielded,omitempty"`
	// Failures are the failed loads still backing off, by digest@num_ctx.
	Failures map[string]failure `json:"failures,omitempty"`
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
	p := persisted{}
	var err error
	if path != "" {
		// A damaged file gives back every entry written whole; the file
		// is set aside and err says where.
		p, err = statefile.Load[persisted](path)
	}
	if p.Models == nil {
		p.Models = map[string]usage{}
	}
	if p.Calibrations == nil {
		p.Calibrations = map[string]uint64{}
	}
	return p, err
}

// catalog maps a model's digest (from the list) to what /api/show said of
// it. A digest names the exact manifest, so the details never go stale;
// keeping them saves a start-up from asking Ollama again for every model,
// which costs tens of milliseconds each.
type catalog map[string]Details

func loadCatalog(path string) (catalog, error) {
	if path == "" {
		return catalog{}, nil
	}
	c, err := statefile.Load[catalog](path)
	if c == nil {
		c = catalog{}
	}
	return c, err
}

// saveJSON writes v crash-safely: temp file, fsync, rename, folder fsync.
func saveJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	return statefile.Save(path, v)
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
	journal                             *journal.Journal[Event] // nil without a state folder
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
		// The store reports failures itself, once per file.
		s.journal = journal.Open[Event](s.historyPath, journal.Options{Log: slog.New(slog.DiscardHandler)})
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
	for s.next(ctx.Done()) {
	}
	for s.next(nil) {
	}
}

// next writes one pending thing, waiting for one until stop is closed, or
// not at all when stop is nil. It reports whether it wrote.
func (s *store) next(stop <-chan struct{}) bool {
	if stop == nil {
		if len(s.state)+len(s.catalog)+len(s.history) == 0 {
			return false
		}
		stop = make(chan struct{}) // something is pending: take it
	}
	select {
	case p := <-s.state:
		s.write(s.statePath, p)
	case c := <-s.catalog:
		s.write(s.catalogPath, c)
	case e := <-s.history:
		s.append(e)
	case <-stop:
		return false
	}
	return true
}

func (s *store) write(path string, v any) {
	s.result(path, saveJSON(path, v))
}

func (s *store) append(e Event) {
	if s.journal == nil {
		return
	}
	s.result(s.historyPath, s.journal.Append(e))
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

// readHistory loads the newest limit events of the journal at path,
// oldest first, reading from its end; damaged lines are skipped and
// counted, so one bad write never loses the rest.
func readHistory(path string, limit int, log *slog.Logger) []Event {
	if path == "" {
		return nil
	}
	j := journal.Open[Event](path, journal.Options{Log: log})
	recent, skipped, err := j.Newest(limit)
	if err != nil {
		log.Warn("history not read whole", "file", path, "err", err)
	}
	if skipped > 0 {
		log.Warn("history lines skipped: damaged (a write cut short, or a bad disk block)", "file", path, "lines", skipped)
	}
	slices.Reverse(recent)
	return recent
}
