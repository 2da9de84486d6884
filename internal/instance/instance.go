// Package instance makes sure one VRAM Keeper manages one state folder,
// and so one Ollama: two managers on the same server would evict each
// other's held and pinned models and overwrite each other's state.
//
// The holder takes an exclusive file lock (github.com/gofrs/flock) on
// vramkeeper.lock in the state folder and records who it is in
// instance.json beside it, so that a second start can name the first and
// reach its API. The kernel drops the lock when the holder dies, so a
// crash never leaves the folder locked; a stale instance.json is then
// simply overwritten.
package instance

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"

	"github.com/vramkeeper/vramkeeper/manager/statefile"
)

// File names in the state folder.
const (
	LockFile = "vramkeeper.lock"
	InfoFile = "instance.json"
)

// Info is what the holder says about itself.
type Info struct {
	PID int `json:"pid"`
	// Mode is "tray", "serve" or "cli" (a one-shot command running the
	// manager in its own process).
	Mode string `json:"mode"`
	// API is the address of its local API (host:port); "" for the CLI.
	API     string    `json:"api,omitempty"`
	Ollama  string    `json:"ollama"`
	Started time.Time `json:"started"`
}

func (i Info) String() string {
	s := fmt.Sprintf("%s, pid %d", i.Mode, i.PID)
	if i.API != "" {
		s += ", API http://" + i.API
	}
	return s
}

// ErrHeld is wrapped by *HeldError.
var ErrHeld = errors.New("another VRAM Keeper runs")

// HeldError says who holds the state folder.
type HeldError struct {
	Dir string
	// Holder is what the holder recorded; zero when it had not yet, or
	// the record is unreadable.
	Holder Info
}

func (e *HeldError) Error() string {
	if e.Holder.PID == 0 {
		return fmt.Sprintf("%v: it holds %s", ErrHeld, filepath.Join(e.Dir, LockFile))
	}
	return fmt.Sprintf("%v (%s) and manages the Ollama at %s from the state folder %s",
		ErrHeld, e.Holder, e.Holder.Ollama, e.Dir)
}

func (e *HeldError) Unwrap() error { return ErrHeld }

// Lock is a held state folder.
type Lock struct {
	fl  *flock.Flock
	dir string
}

// Acquire takes the state folder dir for the process described by me,
// without waiting: a *HeldError (errors.Is ErrHeld) when another process
// has it.
func Acquire(dir string, me Info) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state folder %s: %w", dir, err)
	}
	fl := flock.New(filepath.Join(dir, LockFile))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking the state folder %s: %w", dir, err)
	}
	if !ok {
		held := &HeldError{Dir: dir}
		held.Holder, _ = Read(dir)
		return nil, held
	}
	if err := statefile.Save(filepath.Join(dir, InfoFile), me); err != nil {
		_ = fl.Unlock()
		return nil, fmt.Errorf("recording this instance: %w", err)
	}
	return &Lock{fl: fl, dir: dir}, nil
}

// Read returns what the holder of dir recorded. It only reads: the file
// is the holder's.
func Read(dir string) (Info, error) {
	path := filepath.Join(dir, InfoFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Info{}, err
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return Info{}, fmt.Errorf("%s: %w", path, err)
	}
	if info.PID == 0 {
		return Info{}, fmt.Errorf("%s: no instance recorded", path)
	}
	return info, nil
}

// Release removes the record and frees the folder.
func (l *Lock) Release() error {
	rerr := os.Remove(filepath.Join(l.dir, InfoFile))
	if errors.Is(rerr, os.ErrNotExist) {
		rerr = nil
	}
	return errors.Join(rerr, l.fl.Unlock())
}
