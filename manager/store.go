package manager

import (
	"encoding/json"
	"fmt"
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

func calibKey(digest string, numCtx int) string { return digest + "@" + strconv.Itoa(numCtx) }

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

// save writes atomically so a crash mid-write keeps the previous state.
func (p persisted) save(path string) error { return saveJSON(path, p) }

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
