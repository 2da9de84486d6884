package prefetch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const chunk = 1 * mib

// coldFile writes a file of n bytes and drops it from the page cache. A
// file system without a page cache of its own (tmpfs) cannot be dropped:
// the test is skipped there.
func coldFile(t *testing.T, n int) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("page-cache control is Linux only")
	}
	path := filepath.Join(t.TempDir(), "model.gguf")
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Drop(path); err != nil {
		t.Fatal(err)
	}
	r, err := Resident(path)
	if err != nil {
		t.Fatal(err)
	}
	if r > 0.01 {
		t.Skipf("%s stays cached after a drop (%.0f %%): tmpfs?", path, 100*r)
	}
	return path
}

// memFake is a machine whose available memory falls as the file comes
// into the cache: the worst case, cache that the kernel would not reclaim.
type memFake struct {
	t      *testing.T
	path   string
	start  uint64
	lowest uint64
	calls  int
	onCall func(calls int)
}

func (m *memFake) read() (uint64, error) {
	m.calls++
	if m.onCall != nil {
		m.onCall(m.calls)
	}
	return m.now(), nil
}

func (m *memFake) now() uint64 {
	r, err := Resident(m.path)
	if err != nil {
		m.t.Fatal(err)
	}
	fi, _ := os.Stat(m.path)
	avail := m.start - uint64(r*float64(fi.Size()))
	m.lowest = min(m.lowest, avail)
	return avail
}

func TestWarmMemoryMargin(t *testing.T) {
	const margin = 4 * mib
	cases := map[string]struct {
		start    uint64 // available when Warm starts
		stop     Stop
		maxRead  int64
		resident float64 // at least
	}{
		"plenty":           {start: margin + 64*mib, stop: StopDone, maxRead: 8 * mib, resident: 1},
		"room for 3":       {start: margin + 3*mib + mib/2, stop: StopMemory, maxRead: 3 * mib, resident: 3.0 / 8},
		"already below":    {start: margin - mib, stop: StopMemory, maxRead: 0},
		"exactly a margin": {start: margin, stop: StopMemory, maxRead: 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := coldFile(t, 8*mib)
			mem := &memFake{t: t, path: path, start: tc.start, lowest: tc.start}
			w := New(Options{Margin: margin, Chunk: chunk, Mem: mem.read})
			res, err := w.Warm(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			if res.Stopped != tc.stop || res.Read > tc.maxRead || res.Resident < tc.resident-0.01 {
				t.Errorf("got %+v, want stop %s, read ≤ %d, resident ≥ %.2f", res, tc.stop, tc.maxRead, tc.resident)
			}
			mem.now()
			if tc.start >= margin && mem.lowest < margin {
				t.Errorf("available memory went to %d, below the margin %d", mem.lowest, margin)
			}
		})
	}
}

// Another program takes memory mid-prefetch: the next check stops it.
func TestWarmStopsWhenMemoryDrops(t *testing.T) {
	path := coldFile(t, 8*mib)
	avail := uint64(1 * gib)
	mem := func() (uint64, error) {
		r, _ := Resident(path)
		if r >= 0.25 {
			avail = 4*mib + chunk/2 // someone started a big program: half a chunk above the margin
		}
		return avail, nil
	}
	res, err := New(Options{Margin: 4 * mib, Chunk: chunk, Mem: mem}).Warm(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != StopMemory || res.Read != 2*mib {
		t.Errorf("got %+v, want a memory stop after 2 chunks", res)
	}
}

// A request arrives (the context is cancelled) during the third chunk's
// memory check: nothing more is read.
func TestWarmCancelWithinAChunk(t *testing.T) {
	path := coldFile(t, 16*mib)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mem := &memFake{t: t, path: path, start: 1 * gib, lowest: 1 * gib, onCall: func(n int) {
		if n == 3 {
			cancel()
		}
	}}
	res, err := New(Options{Margin: mib, Chunk: chunk, Mem: mem.read}).Warm(ctx, path)
	if !errors.Is(err, context.Canceled) || res.Stopped != StopCancelled {
		t.Fatalf("err %v, stop %s; want a cancellation", err, res.Stopped)
	}
	// Readahead may have pulled in the cancelled chunk; never more.
	if res.Read > 2*chunk || res.Resident*16*mib > 3*chunk+64<<10 {
		t.Errorf("read %d, resident %.2f after cancelling at the third chunk", res.Read, res.Resident)
	}
}

func TestWarmSkipsCached(t *testing.T) {
	path := coldFile(t, 4*mib)
	w := New(Options{Margin: mib, Chunk: chunk, Mem: func() (uint64, error) { return gib, nil }})
	first, err := w.Warm(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.Warm(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if first.Read != 4*mib || first.Resident != 1 || again.Read != 0 || again.Stopped != StopDone {
		t.Errorf("first %+v, again %+v: want the whole file once, then nothing", first, again)
	}
	r, err := Resident(path)
	if err != nil || r != 1 {
		t.Errorf("Resident = %.2f, %v after Warm", r, err)
	}
}

func TestWarmErrors(t *testing.T) {
	ok := func() (uint64, error) { return gib, nil }
	w := New(Options{Mem: ok})
	if _, err := w.Warm(context.Background(), filepath.Join(t.TempDir(), "gone")); !errors.Is(err, ErrNotLocal) && !errors.Is(err, ErrUnsupported) {
		t.Errorf("missing file: %v, want ErrNotLocal", err)
	}
	if _, err := w.Warm(context.Background(), t.TempDir()); err == nil {
		t.Error("a directory was warmed")
	}
	path := coldFile(t, mib)
	broken := New(Options{Mem: func() (uint64, error) { return 0, errors.New("no /proc") }})
	res, err := broken.Warm(context.Background(), path)
	if err == nil || res.Read != 0 {
		t.Errorf("unreadable memory: read %d, err %v; want nothing read and an error", res.Read, err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := w.Warm(context.Background(), empty); err != nil || res.Resident != 1 || res.Stopped != StopDone {
		t.Errorf("empty file: %+v, %v", res, err)
	}
}
