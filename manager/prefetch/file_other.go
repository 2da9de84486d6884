//go:build !linux && !windows

package prefetch

import "fmt"

func openCached(path string) (cached, error) {
	return nil, ErrUnsupported
}

// Drop evicts path from the page cache; Linux only.
func Drop(path string) error {
	return fmt.Errorf("drop %s from the page cache: %w", path, ErrUnsupported)
}
