package gpu

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DRM_IOCTL_I915_QUERY: DRM_IOWR(DRM_COMMAND_BASE + 0x39, struct
// drm_i915_query), include/uapi/drm/i915_drm.h.
const (
	ioctlI915Query         = 3<<30 | 16<<16 | 'd'<<8 | (0x40 + 0x39)
	i915QueryMemoryRegions = 4
)

type i915QueryItem struct {
	queryID uint64
	length  int32
	flags   uint32
	dataPtr uint64
}

type i915Query struct {
	numItems uint32
	flags    uint32
	itemsPtr uint64
}

// queryI915 asks an i915 render node for its memory regions, the way
// Mesa and nvtop do: once for the length, once for the data. Opening the
// render node needs the "render" group, as any GPU program does.
func queryI915(node string) ([]i915Region, error) {
	if node == "" {
		return nil, errors.New("no render node")
	}
	f, err := os.OpenFile(node, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	item := i915QueryItem{queryID: i915QueryMemoryRegions}
	if err := i915Ioctl(f, &item); err != nil {
		return nil, err
	}
	if item.length <= 0 || item.length > 1<<20 {
		return nil, fmt.Errorf("i915 memory regions query: length %d", item.length)
	}
	buf := make([]byte, item.length)
	item.dataPtr = uint64(uintptr(unsafe.Pointer(&buf[0])))
	err = i915Ioctl(f, &item)
	runtime.KeepAlive(buf)
	if err != nil {
		return nil, err
	}
	if item.length < 0 {
		return nil, fmt.Errorf("i915 memory regions query: error %d", -item.length)
	}
	return parseI915Regions(buf)
}

func i915Ioctl(f *os.File, item *i915QueryItem) error {
	q := i915Query{numItems: 1, itemsPtr: uint64(uintptr(unsafe.Pointer(item)))}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), ioctlI915Query, uintptr(unsafe.Pointer(&q)))
	runtime.KeepAlive(item)
	runtime.KeepAlive(f)
	if errno != 0 {
		return fmt.Errorf("DRM_IOCTL_I915_QUERY: %w", errno)
	}
	return nil
}
