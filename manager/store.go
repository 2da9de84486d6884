package manager

import (
	"strconv"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/statefile"
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

// save writes crash-safely (statefile.Save).
func (p persisted) save(path string) error { return saveJSON(path, p) }

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
