package statefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows"
)

// renameio's WriteFile is not built for Windows, and NTFS differs where it
// matters: a rename over a file that another process holds open (a
// reader, the search indexer, an antivirus scan) fails until that process
// closes it, and a folder cannot be fsynced. So the temp file is moved
// with MoveFileEx(REPLACE_EXISTING|WRITE_THROUGH), which returns once the
// move is on disk, and a move refused because the file is in use is tried
// again for a while.

func writeFile(dir, path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close() // may be closed already; the first error matters
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Windows has only the read-only bit; a perm without write sets it.
	if err := os.Chmod(tmp, perm); err != nil {
		return err
	}
	return Rename(tmp, path)
}

// renameTries and renameWait bound the retries: about 1.5 s in all, longer
// than a scan or a reader holds a small file, short enough for a caller
// that waits.
const (
	renameTries = 10
	renameWait  = 20 * time.Millisecond
)

// Rename moves from to to, replacing to, durably; a move refused because
// either file is open elsewhere is tried again for about 1.5 s.
func Rename(from, to string) error {
	return retryInUse(func() error { return moveFile(from, to) }, renameTries, func(i int) {
		time.Sleep(renameWait << min(i, 4))
	})
}

func moveFile(from, to string) error {
	f, err := windows.UTF16PtrFromString(from)
	if err != nil {
		return err
	}
	t, err := windows.UTF16PtrFromString(to)
	if err != nil {
		return err
	}
	if err := windows.MoveFileEx(f, t, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// retryInUse runs op up to tries times while it fails because a file is in
// use, calling wait(i) between tries.
func retryInUse(op func() error, tries int, wait func(i int)) error {
	var err error
	for i := range tries {
		if err = op(); err == nil || !inUse(err) {
			return err
		}
		if i < tries-1 {
			wait(i)
		}
	}
	return fmt.Errorf("%w (still in use by another program after %d tries)", err, tries)
}

// inUse: the errors NTFS gives for a file another process has open.
func inUse(err error) bool {
	return errors.Is(err, windows.ERROR_ACCESS_DENIED) ||
		errors.Is(err, windows.ERROR_SHARING_VIOLATION) ||
		errors.Is(err, windows.ERROR_LOCK_VIOLATION)
}
