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
	"crypto/sha256"
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
	fl     *flock.Flock
	record string // where this holder's record is; "" when none could be written
	// Degraded says why the folder could not be written (nil when it
	// could): it is locked through a file beside the system's temporary
	// files, or its record lives there, or there is none. The caller
	// warns once; the holder runs on.
	Degraded error
}

// Acquire takes the state folder dir for the process described by me,
// without waiting: a *HeldError (errors.Is ErrHeld) when another process
// has it. A folder that cannot be written (read-only, full, not ours) is
// still taken: the lock file, when it is there, is locked as it is
// (reading is enough), else one in the system's temporary folder named
// for dir stands in for it, and the record goes there too; Lock.Degraded
// says why.
func Acquire(dir string, me Info) (*Lock, error) {
	var degraded error
	if err := os.MkdirAll(dir, 0o700); err != nil {
		degraded = fmt.Errorf("state folder %s: %w", dir, err)
	}
	fl := flock.New(filepath.Join(dir, LockFile))
	ok, err := fl.TryLock()
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, os.ErrPermission) && !isReadOnly(err) && degraded == nil {
		return nil, fmt.Errorf("locking the state folder %s: %w", dir, err)
	}
	if err != nil {
		// No lock file, and none can be made there.
		degraded = errors.Join(degraded, fmt.Errorf("locking the state folder %s: %w", dir, err))
		fl = flock.New(standIn(dir, LockFile))
		if ok, err = fl.TryLock(); err != nil {
			return nil, fmt.Errorf("locking the state folder %s through %s: %w", dir, fl.Path(), err)
		}
	}
	if !ok {
		held := &HeldError{Dir: dir}
		held.Holder, _ = Read(dir)
		return nil, held
	}
	l := &Lock{fl: fl, Degraded: degraded}
	for _, path := range []string{filepath.Join(dir, InfoFile), standIn(dir, InfoFile)} {
		err := statefile.Save(path, me)
		if err == nil {
			l.record = path
			break
		}
		l.Degraded = errors.Join(l.Degraded, fmt.Errorf("recording this instance: %w", err))
	}
	if l.record != filepath.Join(dir, InfoFile) {
		// A record of an earlier holder there must not outlive this one's.
		_ = os.Remove(filepath.Join(dir, InfoFile))
	}
	return l, nil
}

// standIn is where a file of dir's goes when dir cannot be written: in
// the system's temporary folder, named for dir, so that every process
// that takes dir finds the same one.
func standIn(dir, name string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(os.TempDir(), fmt.Sprintf("vramkeeper-%x-%s", sum[:8], name))
}

// Read returns what the holder of dir recorded, in dir or where it
// records when dir cannot be written (the newer of the two). It only
// reads: the record is the holder's.
func Read(dir string) (Info, error) {
	info, err := readRecord(filepath.Join(dir, InfoFile))
	if other, oerr := readRecord(standIn(dir, InfoFile)); oerr == nil && (err != nil || other.Started.After(info.Started)) {
		return other, nil
	}
	return info, err
}

func readRecord(path string) (Info, error) {
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
	var rerr error
	if l.record != "" {
		rerr = os.Remove(l.record)
		if errors.Is(rerr, os.ErrNotExist) {
			rerr = nil
		}
	}
	return errors.Join(rerr, l.fl.Unlock())
}
