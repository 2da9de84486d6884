//go:build !linux && !windows

package gpu

// systemDrivers elsewhere (macOS): none answers, and the note says so.
func systemDrivers(roots) []driver {
	return []driver{nvmlDriver{lib: newNVML()}}
}
