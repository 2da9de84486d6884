//go:build !windows

package instance

import (
	"errors"
	"syscall"
)

// isReadOnly: the folder's file system is mounted read-only, or full.
func isReadOnly(err error) bool {
	return errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
