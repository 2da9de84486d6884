package prefetch

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// linuxFile holds the file open and mapped: the mapping is only read by
// mincore, never touched, so a file truncated under it cannot fault.
type linuxFile struct {
	f    *os.File
	n    int64
	m    []byte // nil for an empty file
	page int64
}

func openCached(path string) (cached, error) {
	fh, n, err := statRegular(path)
	if err != nil {
		return nil, err
	}
	lf := &linuxFile{f: fh, n: n, page: int64(os.Getpagesize())}
	if n > 0 {
		if lf.m, err = unix.Mmap(int(fh.Fd()), 0, int(n), unix.PROT_READ, unix.MAP_SHARED); err != nil {
			fh.Close()
			return nil, fmt.Errorf("mmap: %w", err)
		}
	}
	return lf, nil
}

func (l *linuxFile) size() int64 { return l.n }

func (l *linuxFile) resident(off, n int64) (int64, error) {
	if n <= 0 {
		return 0, nil
	}
	start := off / l.page * l.page // mincore wants a page-aligned address
	end := off + n
	vec := make([]byte, (end-start+l.page-1)/l.page)
	if err := mincore(l.m[start:end], vec); err != nil {
		return 0, fmt.Errorf("mincore: %w", err)
	}
	var r int64
	for i, v := range vec {
		if v&1 == 0 {
			continue
		}
		// Count only the part of the page inside [off, end).
		ps := start + int64(i)*l.page
		r += min(ps+l.page, end) - max(ps, off)
	}
	return r, nil
}

func (l *linuxFile) willNeed(off, n int64) error {
	return unix.Fadvise(int(l.f.Fd()), off, n, unix.FADV_WILLNEED)
}

func (l *linuxFile) readAt(buf []byte, off int64) (int, error) { return l.f.ReadAt(buf, off) }

func (l *linuxFile) close() error {
	var err error
	if l.m != nil {
		err = unix.Munmap(l.m)
	}
	return errors.Join(err, l.f.Close())
}

// Drop writes path's dirty pages to disk and asks the kernel to evict the
// file from the page cache, so the next read comes from the disk: the
// bench's cold case, and the tests'. Pages mapped by a running process
// (a loaded model) stay.
func Drop(path string) error {
	fh, _, err := statRegular(path)
	if err != nil {
		return fmt.Errorf("drop %s from the page cache: %w", path, err)
	}
	defer fh.Close()
	// Dirty pages cannot be dropped: write them out first.
	if err := fh.Sync(); err != nil {
		return fmt.Errorf("drop %s from the page cache: sync: %w", path, err)
	}
	if err := unix.Fadvise(int(fh.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("drop %s from the page cache: %w", path, err)
	}
	return nil
}

// mincore has no wrapper in x/sys/unix: one bit per page of b, set when
// the page is in the cache. b must start on a page boundary.
func mincore(b, vec []byte) error {
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		return e
	}
	return nil
}
