//go:build !windows

package prefetch

import (
	"fmt"
	"os"
)

// MemAvailable reads MemAvailable from /proc/meminfo: the kernel's estimate
// of the memory programs can still get without swapping, cached files that
// can be reclaimed included.
func MemAvailable() (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("available memory: %w", err)
	}
	defer f.Close()
	n, err := parseMemAvailable(f)
	if err != nil {
		return 0, fmt.Errorf("available memory from /proc/meminfo: %w", err)
	}
	return n, nil
}
