package prefetch

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// memoryStatusEx is MEMORYSTATUSEX; golang.org/x/sys has no binding.
type memoryStatusEx struct {
	length               uint32
	memoryLoad           uint32
	totalPhys            uint64
	availPhys            uint64
	totalPageFile        uint64
	availPageFile        uint64
	totalVirtual         uint64
	availVirtual         uint64
	availExtendedVirtual uint64
}

var procGlobalMemoryStatusEx = windows.NewLazySystemDLL("kernel32.dll").NewProc("GlobalMemoryStatusEx")

// MemAvailable is the physical memory Windows can give programs now
// (GlobalMemoryStatusEx's ullAvailPhys): free pages plus the standby list,
// the cached files it can reclaim, as Linux's MemAvailable counts them.
func MemAvailable() (uint64, error) {
	st := memoryStatusEx{length: uint32(unsafe.Sizeof(memoryStatusEx{}))}
	if r, _, err := procGlobalMemoryStatusEx.Call(uintptr(unsafe.Pointer(&st))); r == 0 {
		return 0, fmt.Errorf("available memory: GlobalMemoryStatusEx: %w", err)
	}
	return st.availPhys, nil
}
