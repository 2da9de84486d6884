// Package journal keeps an append-only log of JSON records, one per line,
// bounded on disk: the file is rotated at a size cap and only a few
// rotated files are kept, so a stream of events (a failed request every
// second, for weeks) never fills the disk. The newest records are read
// first, from the end of the files, without loading them whole.
//
// Rotation is done here, synchronously, rather than with
// gopkg.in/natefinch/lumberjack.v2: lumberjack removes old files from a
// goroutine it starts and never stops, so the cap would hold only
// eventually and every user would leak that goroutine.
package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/vramkeeper/vramkeeper/manager/statefile"
)

// Defaults: 1 MiB a file and 3 rotated files, 4 MiB at most on disk, some
// 20,000 history events.
const (
	DefaultMaxBytes = 1 << 20
	DefaultBackups  = 3
)

// Options configure a Journal; zero values take the defaults.
type Options struct {
	// MaxBytes caps one file; a record that would cross it starts a new
	// file. The journal never holds more than MaxBytes × (Backups+1).
	MaxBytes int64
	// Backups is how many rotated files (path.1 newest … path.N) are kept.
	Backups int
	Log     *slog.Logger
}

// Journal appends records of type T to a file. Safe for concurrent use.
// It starts no goroutine and holds no file open between calls, so it
// needs no closing.
type Journal[T any] struct {
	path string
	opt  Options

	mu sync.Mutex
	// failing is set at the first failed append and cleared by the next
	// good one: a full or read-only disk is reported once, not per event.
	failing bool
}

// Open returns a journal at path. Nothing is touched until the first
// Append; reading works on whatever is there.
func Open[T any](path string, opt Options) *Journal[T] {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.Backups < 0 {
		opt.Backups = 0
	} else if opt.Backups == 0 {
		opt.Backups = DefaultBackups
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &Journal[T]{path: path, opt: opt}
}

// Path is the file appended to.
func (j *Journal[T]) Path() string { return j.path }

// files lists the journal's files, newest first.
func (j *Journal[T]) files() []string {
	out := []string{j.path}
	for i := 1; i <= j.opt.Backups; i++ {
		out = append(out, j.path+"."+strconv.Itoa(i))
	}
	return out
}

// Append writes v as one line. A failure (full or read-only disk) is
// logged once until appends work again, and returned; the journal stays
// usable and tries again at the next record.
func (j *Journal[T]) Append(v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("journal %s: encode record: %w", j.path, err)
	}
	line := append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if int64(len(line)) > j.opt.MaxBytes {
		return fmt.Errorf("journal %s: a record of %d bytes exceeds the %d-byte file cap", j.path, len(line), j.opt.MaxBytes)
	}
	err = j.write(line)
	switch {
	case err != nil && !j.failing:
		j.failing = true
		j.opt.Log.Warn("history is not being saved (is the disk full or read-only?); the app keeps running and retries with each event",
			"file", j.path, "err", err)
	case err == nil && j.failing:
		j.failing = false
		j.opt.Log.Info("history is being saved again", "file", j.path)
	}
	return err
}

func (j *Journal[T]) write(line []byte) error {
	f, size, fresh, err := j.open()
	if err != nil {
		return err
	}
	if size > 0 && size+int64(len(line))+1 > j.opt.MaxBytes {
		f.Close()
		if err := j.rotate(); err != nil {
			return err
		}
		if f, _, fresh, err = j.open(); err != nil {
			return err
		}
	}
	if fresh {
		// The file ends in a line cut short (a crash, a full disk): end
		// it, so that half never swallows this whole record.
		line = append([]byte{'\n'}, line...)
	}
	_, werr := f.Write(line)
	cerr := f.Close() // appends are not synced: a crash costs a few events
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("journal %s: append: %w", j.path, err)
	}
	return nil
}

// open opens the current file for appending, with its size and whether it
// ends in the middle of a line.
func (j *Journal[T]) open() (f *os.File, size int64, cut bool, err error) {
	if err := os.MkdirAll(filepath.Dir(j.path), 0o700); err != nil {
		return nil, 0, false, fmt.Errorf("journal %s: %w", j.path, err)
	}
	f, err = os.OpenFile(j.path, os.O_CREATE|os.O_APPEND|os.O_RDWR, 0o600)
	if err != nil {
		return nil, 0, false, fmt.Errorf("journal %s: %w", j.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, false, fmt.Errorf("journal %s: %w", j.path, err)
	}
	if size = fi.Size(); size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, size-1); err != nil {
			f.Close()
			return nil, 0, false, fmt.Errorf("journal %s: %w", j.path, err)
		}
		cut = last[0] != '\n'
	}
	return f, size, cut, nil
}

// rotate shifts path.N-1 → path.N … path → path.1; the oldest falls off.
func (j *Journal[T]) rotate() error {
	fs := j.files()
	if j.opt.Backups == 0 {
		if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("journal %s: rotate: %w", j.path, err)
		}
	}
	for i := len(fs) - 1; i > 0; i-- {
		// statefile.Rename: on Windows a reader holding the file makes the
		// rename wait for it rather than fail.
		if err := statefile.Rename(fs[i-1], fs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("journal %s: rotate: %w", j.path, err)
		}
	}
	return nil
}

// Newest returns up to n records, newest first, reading the files
// backwards from their ends: a start-up that wants the last 200 events
// reads a few kilobytes, however long the journal. Lines that do not
// parse (a write cut by a crash, a damaged disk block) are skipped and
// counted in skipped.
func (j *Journal[T]) Newest(n int) (recs []T, skipped int, err error) {
	if n <= 0 {
		return nil, 0, nil
	}
	for _, path := range j.files() {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return recs, skipped, fmt.Errorf("journal %s: %w", path, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return recs, skipped, fmt.Errorf("journal %s: %w", path, err)
		}
		err = eachLineBackwards(f, fi.Size(), readChunk, j.opt.MaxBytes, func(line []byte) bool {
			var v T
			if line == nil || json.Unmarshal(line, &v) != nil {
				skipped++
				return true
			}
			recs = append(recs, v)
			return len(recs) < n
		})
		f.Close()
		if err != nil {
			return recs, skipped, fmt.Errorf("journal %s: %w", path, err)
		}
		if len(recs) >= n {
			break
		}
	}
	return recs, skipped, nil
}

const readChunk = 64 << 10

// eachLineBackwards calls fn with each non-empty line of f, last first,
// until fn returns false, reading chunk bytes at a time. A line longer
// than maxLine (not one this package wrote) may come as nil. Memory stays
// within a chunk and maxLine.
func eachLineBackwards(f io.ReaderAt, size, chunk, maxLine int64, fn func(line []byte) bool) error {
	pos := size
	var tail []byte   // the start of a line whose end was in a later chunk
	overlong := false // the line being read is past maxLine: drop it
	emit := func(line []byte) bool {
		if overlong {
			overlong = false
			return fn(nil)
		}
		if len(line) == 0 {
			return true
		}
		return fn(line)
	}
	for pos > 0 {
		n := min(chunk, pos)
		pos -= n
		buf := make([]byte, n, int(n)+len(tail))
		if _, err := f.ReadAt(buf, pos); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		buf = append(buf, tail...)
		end := len(buf)
		for i := len(buf) - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				continue
			}
			if !emit(buf[i+1 : end]) {
				return nil
			}
			end = i
		}
		tail = buf[:end]
		if int64(len(tail)) > maxLine {
			tail, overlong = nil, true
		}
	}
	emit(tail)
	return nil
}
