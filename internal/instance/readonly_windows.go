package instance

import (
	"errors"

	"golang.org/x/sys/windows"
)

// isReadOnly: the folder's medium is write-protected, or full.
func isReadOnly(err error) bool {
	return errors.Is(err, windows.ERROR_WRITE_PROTECT) || errors.Is(err, windows.ERROR_DISK_FULL) ||
		errors.Is(err, windows.ERROR_HANDLE_DISK_FULL)
}
