//go:build !windows

package statefile

import (
	"errors"
	"fmt"
	"os"

	"github.com/google/renameio/v2"
)

func writeFile(dir, path string, data []byte, perm os.FileMode) error {
	// The temp file goes beside the target: a rename only works within one
	// file system, and renameio would otherwise probe $TMPDIR every time.
	if err := renameio.WriteFile(path, data, perm, renameio.WithTempDir(dir)); err != nil {
		return err
	}
	// The rename lives in the folder's entry list: without this fsync a
	// power loss can bring back the old file (or none).
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	return errors.Join(serr, cerr)
}

// Rename moves from to to, replacing to: a POSIX rename is atomic and
// works whoever has either file open.
func Rename(from, to string) error { return os.Rename(from, to) }
