//go:build !windows

package gpu

// processNames reads /proc/PID/comm under the roots.
func processNames(r roots) func(uint32) string { return r.comm }
