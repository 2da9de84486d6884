package prefetch

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// Windows has neither posix_fadvise nor mincore: the file is read
// sequentially (opened with FILE_FLAG_SEQUENTIAL_SCAN, so the cache
// manager reads ahead and recycles its pages early), and what is cached
// cannot be measured, so the "warm in RAM" share stays unknown (0, not
// shown).
type windowsFile struct {
	f *os.File
	n int64
}

func openCached(path string) (cached, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_SEQUENTIAL_SCAN, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(h), path)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return &windowsFile{f: f, n: fi.Size()}, nil
}

func (w *windowsFile) size() int64                               { return w.n }
func (w *windowsFile) resident(int64, int64) (int64, error)      { return 0, ErrUnsupported }
func (w *windowsFile) willNeed(int64, int64) error               { return nil } // the read itself
func (w *windowsFile) readAt(buf []byte, off int64) (int, error) { return w.f.ReadAt(buf, off) }
func (w *windowsFile) close() error                              { return w.f.Close() }

// Drop evicts path from the page cache; Linux only.
func Drop(path string) error {
	return fmt.Errorf("drop %s from the page cache: %w", path, ErrUnsupported)
}
