//go:build linux && cgo

package gpu

import (
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// goNVML is the real NVML over go-nvml. go-nvml dlopens
// libnvidia-ml.so.1 inside Init, so building and starting need no NVIDIA
// software: a machine without it gets ERROR_LIBRARY_NOT_FOUND from Init,
// not a crash.
type goNVML struct {
	lib nvml.Interface
	// v2 is whether nvmlDeviceGetMemoryInfo_v2 exists (drivers from about
	// R510). It must be checked: go-nvml binds symbols lazily, and calling
	// one the library lacks kills the process instead of returning an error.
	v2   bool
	devs []nvml.Device
}

func newNVML() nvmlLib {
	// A library instance of our own rather than go-nvml's package-level
	// one, so this probe's Init/Shutdown pairs stay its own.
	return &goNVML{lib: nvml.New()}
}

func (d *goNVML) Init() (err error) {
	// go-nvml reports a missing library as ERROR_LIBRARY_NOT_FOUND, but a
	// broken or foreign libnvidia-ml.so could still make its Go side panic;
	// degrade to the fallback rather than take the tray app down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("nvml init panicked: %v", r)
		}
	}()
	// When the library loads but nvmlInit fails (driver not loaded),
	// go-nvml keeps the library open and Shutdown cannot close it; a retry
	// reuses that handle, so retrying once a minute costs no more than one
	// open library.
	if ret := d.lib.Init(); ret != nvml.SUCCESS {
		return initError(ret)
	}
	d.v2 = d.lib.Extensions().LookupSymbol("nvmlDeviceGetMemoryInfo_v2") == nil
	n, ret := d.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		_ = d.lib.Shutdown()
		return fmt.Errorf("nvmlDeviceGetCount: %w", ret)
	}
	d.devs = d.devs[:0]
	for i := range n {
		h, ret := d.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			_ = d.lib.Shutdown()
			return fmt.Errorf("nvmlDeviceGetHandleByIndex(%d): %w", i, ret)
		}
		d.devs = append(d.devs, h)
	}
	return nil
}

// initError names the common failures in words a user can act on.
func initError(ret nvml.Return) error {
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return errNoLibrary
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return fmt.Errorf("NVIDIA driver not loaded: %w", ret)
	case nvml.ERROR_NO_PERMISSION:
		return fmt.Errorf("no permission to use the NVIDIA driver: %w", ret)
	case nvml.ERROR_LIB_RM_VERSION_MISMATCH:
		return fmt.Errorf("driver and library versions differ (reboot after a driver update): %w", ret)
	default:
		return fmt.Errorf("nvmlInit: %w", ret)
	}
}

func (d *goNVML) Shutdown() error {
	d.devs = d.devs[:0]
	if ret := d.lib.Shutdown(); ret != nvml.SUCCESS {
		return ret
	}
	return nil
}

func (d *goNVML) Devices() int { return len(d.devs) }

func (d *goNVML) Device(i int) (device, error) {
	h := d.devs[i]
	name, ret := h.GetName()
	if ret != nvml.SUCCESS {
		name = fmt.Sprintf("GPU %d", i) // a name is nice, not needed
	}
	// v2 separates the driver's reservation from process allocations; its
	// Used excludes Reserved, v1's Used includes it. Either way we report
	// Used = everything not free. Some GPUs refuse v2 (NOT_SUPPORTED,
	// ARGUMENT_VERSION_MISMATCH), so fall back to v1 on any error.
	var bus string
	if pci, ret := h.GetPciInfo(); ret == nvml.SUCCESS {
		bus = busID(pci.BusId[:])
	}
	if d.v2 {
		if m, ret := h.GetMemoryInfo_v2(); ret == nvml.SUCCESS {
			return device{Name: name, BusID: bus, Total: m.Total, Used: m.Used + m.Reserved, Free: m.Free, Reserved: m.Reserved}, nil
		}
	}
	m, ret := h.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return device{}, fmt.Errorf("nvmlDeviceGetMemoryInfo: %w", ret)
	}
	return device{Name: name, BusID: bus, Total: m.Total, Used: m.Used, Free: m.Free}, nil
}

func (d *goNVML) Processes(i int) ([]process, error) {
	infos, ret := d.devs[i].GetComputeRunningProcesses()
	if errors.Is(ret, nvml.ERROR_NOT_SUPPORTED) {
		return nil, fmt.Errorf("%w: %w", ErrNotSupported, ret)
	}
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvmlDeviceGetComputeRunningProcesses: %w", ret)
	}
	out := make([]process, 0, len(infos))
	for _, pi := range infos {
		out = append(out, process{PID: pi.Pid, Used: pi.UsedGpuMemory})
	}
	return out, nil
}
