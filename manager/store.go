package manager

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/journal"
	"github.com/vramkeeper/vramkeeper/manager/serving"
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
	// Yielding: the user's yield was recorded (Yielded is what it unloads)
	// before it unloaded anything, and has not finished; a restart
	// finishes it.
	Yielding bool `json:"yielding,omitempty"`
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
	if folderThere(path) {
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
type catalog map[string]serving.Details

func loadCatalog(path string) (catalog, error) {
	if !folderThere(path) {
		return catalog{}, nil
	}
	c, err := statefile.Load[catalog](path)
	if c == nil {
		c = catalog{}
	}
	return c, err
}

// folderThere reports whether the folder of a state file is there to be
// read: a folder that does not exist and cannot be made (its store warns
// once) has saved nothing.
func folderThere(path string) bool {
	if path == "" {
		return false
	}
	fi, err := os.Stat(filepath.Dir(path))
	return err == nil && fi.IsDir()
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
	state                               chan stateWrite
	catalog                             chan map[string]serving.Details
	history                             chan Event
	journal                             *journal.Journal[Event] // nil without a state folder
	log                                 *slog.Logger
	// failing: the folder could not be written lately; warned once until
	// a write works again. The writer's own, once it runs.
	failing bool
	// dropping: history entries were dropped (the owner's; warned once).
	dropping bool
}

// newStore writes into dir. A folder that cannot be written (read-only,
// full, not ours) is one warning, here, before anything runs: the app
// keeps its state in memory and saves it once the folder takes writes.
func newStore(dir string, log *slog.Logger) *store {
	s := &store{
		state:   make(chan stateWrite, 1),
		catalog: make(chan map[string]serving.Details, 1),
		history: make(chan Event, 4096),
		log:     log,
	}
	if dir != "" {
		s.statePath = filepath.Join(dir, "state.json")
		s.catalogPath = filepath.Join(dir, "catalog.json")
		s.historyPath = filepath.Join(dir, "history.jsonl")
		// The store reports failures itself, once for the folder.
		s.journal = journal.Open[Event](s.historyPath, journal.Options{Log: slog.New(slog.DiscardHandler)})
		if err := writable(dir); err != nil {
			s.warn(dir, err)
		}
	}
	return s
}

// writable checks that dir takes a new file.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".writable-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
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

// stateWrite is a state file to write, and who waits for it to be on
// disk (a yield records itself before it acts).
type stateWrite struct {
	p    persisted
	done []func(error)
}

func (s *store) saveState(p persisted) { s.offerState(stateWrite{p: p}) }

// recordState writes p as saveState does and calls done once it is on
// disk (or could not be written), from the writer's goroutine.
func (s *store) recordState(p persisted, done func(error)) {
	s.offerState(stateWrite{p: p, done: []func(error){done}})
}

// offerState hands w to the writer; a write it has not taken yet is
// replaced (the newer state holds the older), and whoever waited for the
// older one waits for this one.
func (s *store) offerState(w stateWrite) {
	for {
		select {
		case s.state <- w:
			return
		default:
		}
		select {
		case old := <-s.state:
			w.done = append(old.done, w.done...)
		default:
		}
	}
}

func (s *store) saveCatalog(c map[string]serving.Details) { offer(s.catalog, c) }

func (s *store) appendHistory(e Event) {
	select {
	case s.history <- e:
	default:
		if !s.dropping {
			s.dropping = true
			s.log.Warn("history entries dropped: the disk is too slow for them", "file", s.historyPath)
		}
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
	case w := <-s.state:
		err := saveJSON(s.statePath, w.p)
		s.result(s.statePath, err)
		for _, done := range w.done {
			done(err)
		}
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

// result logs a failing folder once, and once more when it takes writes
// again.
func (s *store) result(path string, err error) {
	if err != nil {
		s.warn(path, err)
		return
	}
	if s.failing {
		s.failing = false
		s.log.Info("state saved again", "file", path)
	}
}

func (s *store) warn(path string, err error) {
	if s.failing {
		return
	}
	s.failing = true
	s.log.Warn("state not saved: the state folder cannot be written; VRAM Keeper runs on, keeps its state in memory and saves it at the next change the folder takes",
		"path", path, "err", err)
}

// readHistory loads the newest limit events of the journal at path,
// oldest first, reading from its end; damaged lines are skipped and
// counted, so one bad write never loses the rest.
func readHistory(path string, limit int, log *slog.Logger) []Event {
	if !folderThere(path) {
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
