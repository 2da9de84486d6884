// Package prefetch reads model weight files into the operating system's
// page cache while the machine has memory to spare, so that the next load
// of that model reads RAM instead of the disk. It reads in chunks, checks
// the machine's available memory and its context between chunks, and skips
// what is already cached; it never holds the data itself.
//
// The manager runs it when idle, on the files of the models it predicts
// next (manager/predict), and cancels it the moment a request arrives or a
// load starts. It is off when the model files are not on this machine (a
// remote Ollama): Warm then fails with ErrNotLocal.
package prefetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

const (
	mib = 1 << 20
	gib = 1 << 30
	// DefaultMargin is the available memory prefetching leaves alone: room
	// for the programs the user starts next and for the load itself.
	DefaultMargin = 2 * gib
	// DefaultChunk bounds the reading done after a cancellation (tens of
	// milliseconds at disk speed) and between memory checks.
	DefaultChunk = 16 * mib
	// readBuf is what one read call copies; the data is thrown away.
	readBuf = 1 * mib
)

var (
	// ErrNotLocal: the file does not exist on this machine, e.g. the model
	// server runs elsewhere.
	ErrNotLocal = errors.New("model file is not on this machine")
	// ErrUnsupported: this operating system has no page-cache control here.
	ErrUnsupported = errors.New("prefetch is not supported on this system")
)

// MemSource reports the memory the machine can still give to programs
// without swapping (Linux: MemAvailable).
type MemSource func() (uint64, error)

// Options configure a Warmer. Zero values take the defaults.
type Options struct {
	// Margin is the available memory to leave untouched (DefaultMargin).
	Margin uint64
	// Chunk is how much is read between checks (DefaultChunk).
	Chunk int64
	// Mem reads the available memory (MemAvailable from /proc/meminfo).
	Mem MemSource
}

// Stop says why Warm returned.
type Stop string

const (
	StopDone      Stop = "done"      // the whole file is cached
	StopMemory    Stop = "memory"    // the margin would have been crossed
	StopCancelled Stop = "cancelled" // the context ended
)

// Result is what one Warm did.
type Result struct {
	Path string
	Size int64
	// Read is what this call brought into the cache (bytes of whole chunks
	// that were not cached before it); Resident tells the rest.
	Read int64
	// Resident is the fraction of the file cached when Warm returned.
	Resident float64
	Stopped  Stop
	Took     time.Duration
}

// Warmer reads files into the page cache within a memory margin. It keeps
// no state between calls; one Warmer may serve concurrent calls.
type Warmer struct{ opt Options }

// New returns a Warmer with opt's defaults filled in.
func New(opt Options) *Warmer {
	if opt.Margin == 0 {
		opt.Margin = DefaultMargin
	}
	if opt.Chunk <= 0 {
		opt.Chunk = DefaultChunk
	}
	if opt.Mem == nil {
		opt.Mem = MemAvailable
	}
	return &Warmer{opt: opt}
}

// cached is an open file whose page-cache state can be read and changed.
type cached interface {
	size() int64
	// resident returns how many bytes of [off, off+n) are cached;
	// ErrUnsupported where the system cannot tell.
	resident(off, n int64) (int64, error)
	// willNeed starts reading [off, off+n) into the cache without waiting.
	willNeed(off, n int64) error
	readAt(buf []byte, off int64) (int, error)
	close() error
}

// Warm reads path into the page cache, chunk by chunk, from the start. Before
// each chunk that is not already cached it checks the available memory:
// it stops (StopMemory) rather than let the chunk take the machine below
// the margin, counting the chunk as used memory even though the kernel may
// reclaim cache, and it never brings in more than was available above the
// margin when it started, since the kernel counts cached files as available
// and would otherwise let the file push out its own first chunks. A
// cancelled ctx stops it before the next read (the readahead already asked
// for, at most one chunk, completes in the kernel); it then returns the
// partial Result and ctx's error.
func (w *Warmer) Warm(ctx context.Context, path string) (Result, error) {
	began := time.Now()
	res := Result{Path: path}
	f, err := openCached(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("prefetch %s: %w: %w", path, ErrNotLocal, err)
		}
		return res, fmt.Errorf("prefetch %s: %w", path, err)
	}
	defer f.close()
	res.Size = f.size()
	finish := func(stop Stop, err error) (Result, error) {
		res.Stopped, res.Took = stop, time.Since(began)
		if r, rerr := f.resident(0, res.Size); rerr == nil && res.Size > 0 {
			res.Resident = float64(r) / float64(res.Size)
		} else if res.Size == 0 {
			res.Resident = 1
		}
		return res, err
	}

	avail, err := w.opt.Mem()
	if err != nil {
		return finish(StopMemory, fmt.Errorf("prefetch %s: reading available memory: %w", path, err))
	}
	var room int64 // what may still be brought in, fixed at the start
	if avail > w.opt.Margin {
		room = int64(min(avail-w.opt.Margin, uint64(1<<62)))
	}
	buf := make([]byte, min(readBuf, w.opt.Chunk))
	for off := int64(0); off < res.Size; off += w.opt.Chunk {
		if err := ctx.Err(); err != nil {
			return finish(StopCancelled, fmt.Errorf("prefetch %s: %w", path, err))
		}
		n := min(w.opt.Chunk, res.Size-off)
		have, err := f.resident(off, n)
		if errors.Is(err, ErrUnsupported) {
			// Nothing says what is cached (Windows): read it all; the
			// system's cache makes a cached chunk cheap.
			have, err = 0, nil
		}
		if err != nil {
			return finish(StopDone, fmt.Errorf("prefetch %s: residency at %d: %w", path, off, err))
		}
		need := n - have
		if need == 0 {
			continue
		}
		if off > 0 { // the first chunk was checked above
			if avail, err = w.opt.Mem(); err != nil {
				return finish(StopMemory, fmt.Errorf("prefetch %s: reading available memory: %w", path, err))
			}
		}
		if avail < w.opt.Margin+uint64(need) || res.Read+need > room {
			return finish(StopMemory, nil)
		}
		if err := f.willNeed(off, n); err != nil {
			return finish(StopDone, fmt.Errorf("prefetch %s: readahead at %d: %w", path, off, err))
		}
		// Reading waits for the readahead; the copy is the price of a
		// synchronous, cancellable pace.
		for p := off; p < off+n; {
			if err := ctx.Err(); err != nil {
				return finish(StopCancelled, fmt.Errorf("prefetch %s: %w", path, err))
			}
			k, err := f.readAt(buf[:min(int64(len(buf)), off+n-p)], p)
			if err != nil {
				return finish(StopDone, fmt.Errorf("prefetch %s: read at %d: %w", path, p, err))
			}
			p += int64(k)
		}
		res.Read += need
	}
	return finish(StopDone, nil)
}

// Resident returns the fraction of path held in the page cache now.
func Resident(path string) (float64, error) {
	f, err := openCached(path)
	if err != nil {
		return 0, fmt.Errorf("residency of %s: %w", path, err)
	}
	defer f.close()
	if f.size() == 0 {
		return 1, nil
	}
	r, err := f.resident(0, f.size())
	if err != nil {
		return 0, fmt.Errorf("residency of %s: %w", path, err)
	}
	return float64(r) / float64(f.size()), nil
}

// statRegular opens path for reading and checks it is a regular file.
func statRegular(path string) (*os.File, int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		fh.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", path)
	}
	return fh, fi.Size(), nil
}
