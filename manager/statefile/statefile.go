// Package statefile keeps small JSON state files (measured sizes, last-used
// times, the model catalogue) safe across crashes and power loss.
//
// Save writes a temp file, fsyncs it, renames it over the old one and
// fsyncs the folder, so after a crash the file holds either the old or the
// new content, never an empty or half file. Load tolerates the damage Save
// cannot prevent (a file cut short by another tool, a disk error, a hand
// edit): it keeps every entry that was written whole, sets the damaged file
// aside under a name that says so, and reports what it did.
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Save writes v as JSON to path, crash-safely. The folder is created (0700)
// when missing; the file is 0600 (state may name private models).
func Save(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// WriteFile replaces path with data crash-safely: a temp file beside it,
// synced, renamed over the old one, and the rename made durable (the
// folder's fsync; on Windows a write-through move). After a crash path
// holds the old or the new data, never a mix. The folder is created (0700)
// when missing.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeFile(dir, path, data, perm)
}

// DamagedError says that a state file did not parse, what of it was kept,
// and where the damaged file was set aside.
type DamagedError struct {
	Path string
	// SetAside is where the damaged file now is; "" when it could not be
	// moved (then it is overwritten at the next save).
	SetAside string
	// Recovered tells whether anything was salvaged.
	Recovered bool
	Err       error
}

func (e *DamagedError) Error() string {
	kept := "nothing in it could be read"
	if e.Recovered {
		kept = "kept every entry that was written whole"
	}
	aside := "it could not be set aside and will be overwritten"
	if e.SetAside != "" {
		aside = "the damaged file is kept as " + e.SetAside
	}
	return fmt.Sprintf("state file %s is damaged (%v): %s; %s", e.Path, e.Err, kept, aside)
}

func (e *DamagedError) Unwrap() error { return e.Err }

// Load reads the JSON file at path into a T.
//
//   - A missing file gives the zero T and no error (a first run).
//   - A file that cannot be read gives the zero T and the read error; the
//     file is left alone.
//   - A file that does not parse gives what Salvage recovers from it and a
//     *DamagedError; the file is renamed to path.damaged-TIME, so nothing
//     is lost and the next Save does not overwrite it.
func Load[T any](path string) (T, error) {
	var v T
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return v, nil
	}
	if err != nil {
		return v, fmt.Errorf("read state file %s: %w", path, err)
	}
	perr := json.Unmarshal(b, &v)
	if perr == nil {
		return v, nil
	}
	v, ok := Salvage[T](b)
	derr := &DamagedError{Path: path, Recovered: ok, Err: perr}
	aside := fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405.000Z"))
	if err := Rename(path, aside); err == nil {
		derr.SetAside = aside
	} else {
		derr.Err = errors.Join(perr, fmt.Errorf("setting it aside: %w", err))
	}
	return v, derr
}
