package gpu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// dllNVML is NVML through nvml.dll, loaded at run time with
// golang.org/x/sys/windows: go-nvml is Linux-only (cgo, dlfcn.h). The
// driver installs nvml.dll into System32 (DCH drivers) or, on older ones,
// into NVIDIA's NVSMI folder under Program Files.
type dllNVML struct {
	dll  *windows.LazyDLL
	devs []uintptr // nvmlDevice_t handles
	v2   bool      // nvmlDeviceGetMemoryInfo_v2 exists
}

func newNVML() nvmlLib { return &dllNVML{} }

// errNoDLL marks an Init failure because nvml.dll is absent.
var errNoDLL = errors.New("nvml.dll not found (no NVIDIA driver)")

// nvmlReturn is nvmlReturn_t, with the codes users can act on named.
type nvmlReturn uintptr

func (r nvmlReturn) Error() string {
	switch r {
	case 3:
		return "NVML_ERROR_NOT_SUPPORTED"
	case 4:
		return "NVML_ERROR_NO_PERMISSION"
	case 7:
		return "NVML_ERROR_INSUFFICIENT_SIZE"
	case 9:
		return "NVML_ERROR_DRIVER_NOT_LOADED"
	case 15:
		return "NVML_ERROR_GPU_IS_LOST"
	case 18:
		return "NVML_ERROR_LIB_RM_VERSION_MISMATCH"
	}
	return fmt.Sprintf("NVML error %d", uintptr(r))
}

const (
	nvmlSuccess          nvmlReturn = 0
	nvmlNotSupported     nvmlReturn = 3
	nvmlInsufficientSize nvmlReturn = 7
	nvmlDriverNotLoaded  nvmlReturn = 9
	nvmlVersionMismatch  nvmlReturn = 18
)

// call calls an NVML function; a function the library lacks is an error,
// not a crash.
func (d *dllNVML) call(name string, args ...uintptr) error {
	p := d.dll.NewProc(name)
	if err := p.Find(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r, _, _ := p.Call(args...)
	if nvmlReturn(r) != nvmlSuccess {
		return fmt.Errorf("%s: %w", name, nvmlReturn(r))
	}
	return nil
}

func (d *dllNVML) has(name string) bool { return d.dll.NewProc(name).Find() == nil }

func loadNVML() (*windows.LazyDLL, error) {
	dll := windows.NewLazySystemDLL("nvml.dll")
	if dll.Load() == nil {
		return dll, nil
	}
	dir := os.Getenv("ProgramW6432") // 64-bit Program Files, also from a 32-bit process
	if dir == "" {
		dir = os.Getenv("ProgramFiles")
	}
	dll = windows.NewLazyDLL(filepath.Join(dir, "NVIDIA Corporation", "NVSMI", "nvml.dll"))
	if err := dll.Load(); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoDLL, err)
	}
	return dll, nil
}

func (d *dllNVML) Init() error {
	if d.dll == nil {
		dll, err := loadNVML()
		if err != nil {
			return err
		}
		d.dll = dll
	}
	if err := d.call("nvmlInit_v2"); err != nil {
		var ret nvmlReturn
		if errors.As(err, &ret) && ret == nvmlDriverNotLoaded {
			return fmt.Errorf("NVIDIA driver not loaded: %w", err)
		}
		if errors.As(err, &ret) && ret == nvmlVersionMismatch {
			return fmt.Errorf("driver and library versions differ (reboot after a driver update): %w", err)
		}
		return err
	}
	d.v2 = d.has("nvmlDeviceGetMemoryInfo_v2")
	var n uint32
	if err := d.call("nvmlDeviceGetCount_v2", uintptr(unsafe.Pointer(&n))); err != nil {
		_ = d.Shutdown()
		return err
	}
	d.devs = d.devs[:0]
	for i := range n {
		var h uintptr
		if err := d.call("nvmlDeviceGetHandleByIndex_v2", uintptr(i), uintptr(unsafe.Pointer(&h))); err != nil {
			_ = d.Shutdown()
			return err
		}
		d.devs = append(d.devs, h)
	}
	return nil
}

func (d *dllNVML) Shutdown() error {
	d.devs = d.devs[:0]
	if d.dll == nil {
		return nil
	}
	return d.call("nvmlShutdown")
}

func (d *dllNVML) Devices() int { return len(d.devs) }

// The structs NVML fills (nvml.h).
type (
	nvmlMemory struct{ total, free, used uint64 }
	// nvmlMemoryV2's version is NVML_STRUCT_VERSION(Memory, 2).
	nvmlMemoryV2 struct {
		version                     uint32
		_                           uint32
		total, reserved, free, used uint64
	}
	nvmlPciInfo struct {
		busIDLegacy                                      [16]byte
		domain, bus, device, pciDeviceID, pciSubSystemID uint32
		busID                                            [32]byte
	}
	// nvmlProcessInfo is nvmlProcessInfo_v2_t and _v3's (same layout).
	nvmlProcessInfo struct {
		pid                              uint32
		usedGPUMemory                    uint64
		gpuInstanceID, computeInstanceID uint32
	}
)

func (d *dllNVML) Device(i int) (device, error) {
	h := d.devs[i]
	var name [96]byte // NVML_DEVICE_NAME_V2_BUFFER_SIZE
	dev := device{Name: fmt.Sprintf("GPU %d", i)}
	if d.call("nvmlDeviceGetName", h, uintptr(unsafe.Pointer(&name[0])), uintptr(len(name))) == nil {
		dev.Name = windows.ByteSliceToString(name[:])
	}
	var pci nvmlPciInfo
	if d.call("nvmlDeviceGetPciInfo_v3", h, uintptr(unsafe.Pointer(&pci))) == nil {
		dev.BusID = busID(pci.busID[:])
	}
	if d.v2 {
		m := nvmlMemoryV2{version: uint32(unsafe.Sizeof(nvmlMemoryV2{})) | 2<<24}
		if d.call("nvmlDeviceGetMemoryInfo_v2", h, uintptr(unsafe.Pointer(&m))) == nil {
			dev.Total, dev.Used, dev.Free, dev.Reserved = m.total, m.used+m.reserved, m.free, m.reserved
			return dev, nil
		}
	}
	var m nvmlMemory
	if err := d.call("nvmlDeviceGetMemoryInfo", h, uintptr(unsafe.Pointer(&m))); err != nil {
		return device{}, err
	}
	dev.Total, dev.Used, dev.Free = m.total, m.used, m.free
	return dev, nil
}

// Processes lists the compute processes. Under WDDM (every consumer
// card on Windows) NVML cannot tell a process's memory and says
// NVML_VALUE_NOT_AVAILABLE, which the NVML driver counts as nothing.
func (d *dllNVML) Processes(i int) ([]process, error) {
	fn := "nvmlDeviceGetComputeRunningProcesses_v3"
	if !d.has(fn) {
		fn = "nvmlDeviceGetComputeRunningProcesses_v2"
	}
	h := d.devs[i]
	for range 3 { // the list can grow between the calls
		var n uint32
		err := d.call(fn, h, uintptr(unsafe.Pointer(&n)), 0)
		var ret nvmlReturn
		switch {
		case err == nil:
			return nil, nil
		case errors.As(err, &ret) && ret == nvmlNotSupported:
			return nil, fmt.Errorf("%w: %w", ErrNotSupported, err)
		case !errors.As(err, &ret) || ret != nvmlInsufficientSize:
			return nil, err
		}
		infos := make([]nvmlProcessInfo, n+4)
		n = uint32(len(infos))
		err = d.call(fn, h, uintptr(unsafe.Pointer(&n)), uintptr(unsafe.Pointer(&infos[0])))
		if errors.As(err, &ret) && ret == nvmlInsufficientSize {
			continue
		}
		if err != nil {
			return nil, err
		}
		out := make([]process, 0, n)
		for _, p := range infos[:min(int(n), len(infos))] {
			out = append(out, process{PID: p.pid, Used: p.usedGPUMemory})
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: the process list kept growing", fn)
}
