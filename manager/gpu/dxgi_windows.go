package gpu

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/vramkeeper/vramkeeper/manager/card"
	"golang.org/x/sys/windows"
)

// dxgiDriver reads any vendor's card on Windows the way Task Manager (and
// Ollama's ggml, mem_dxgi_pdh.cpp) does: DXGI lists the adapters and their
// dedicated memory; the GPU performance counters say what is in use, in
// all and per process. Without the counters (Windows before 10 1709, or
// Wine) it does not answer: a size with no use is no reading.
type dxgiDriver struct {
	dxgi, pdh *windows.LazyDLL
}

func newDXGI() *dxgiDriver {
	return &dxgiDriver{dxgi: windows.NewLazySystemDLL("dxgi.dll"), pdh: windows.NewLazySystemDLL("pdh.dll")}
}

func (*dxgiDriver) name() string { return "DXGI" }

func (*dxgiDriver) shutdown() error { return nil }

func (d *dxgiDriver) init() error {
	if err := d.dxgi.Load(); err != nil {
		return fmt.Errorf("dxgi.dll: %w", err)
	}
	if err := d.pdh.Load(); err != nil {
		return fmt.Errorf("pdh.dll: %w", err)
	}
	adapters, err := d.adapters()
	if err != nil {
		return err
	}
	if len(adapters) == 0 {
		return errors.New("no hardware adapter")
	}
	used, err := d.counter(`\GPU Adapter Memory(*)\Dedicated Usage`)
	if err != nil {
		return fmt.Errorf("GPU performance counters: %w", err)
	}
	if len(used) == 0 {
		return errors.New("the GPU performance counters list no adapter")
	}
	return nil
}

// adapter is one DXGI adapter's description.
type adapter struct {
	name              string
	vendor, device    uint32
	dedicated, shared uint64
	luid              string
	budget            uint64 // QueryVideoMemoryInfo's budget for local memory; 0 when unknown
}

func (d *dxgiDriver) read(ctx context.Context, want func(uint32) bool) ([]reading, error) {
	adapters, err := d.adapters()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	used, err := d.counter(`\GPU Adapter Memory(*)\Dedicated Usage`)
	if err != nil {
		return nil, fmt.Errorf("GPU performance counters: %w", err)
	}
	perProc, procsErr := d.counter(`\GPU Process Memory(*)\Dedicated Usage`)
	if procsErr != nil {
		procsErr = fmt.Errorf("%w: %w", ErrNotSupported, procsErr)
	}
	var out []reading
	for _, a := range adapters {
		c := card.Card{Name: a.name, Source: card.SourceDXGI, ID: a.luid, Total: a.dedicated,
			// An integrated GPU reports a small dedicated carve-out (Intel
			// 128 MiB, AMD APUs 512 MiB); Ollama's rule, as on Linux.
			Integrated: a.dedicated < 1<<30}
		if u, ok := used[a.luid]; ok {
			c.Used = min(u.total, c.Total)
		} else if a.budget > 0 && a.budget < c.Total {
			c.Used = c.Total - a.budget // the OS's budget for us: what others leave
		}
		c.Free = c.Total - c.Used
		r := reading{card: c, vendor: uint16(a.vendor), procsErr: procsErr}
		for pid, b := range perProc[a.luid].perPID {
			name := processName(pid)
			if want == nil || isOllama(name) {
				r.procs = append(r.procs, process{PID: pid, Used: b, Name: name})
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// luidUse is one adapter's counter values: in all, and per process.
type luidUse struct {
	total  uint64
	perPID map[uint32]uint64
}

// The COM interfaces' ids and the methods' places in their vtables
// (dxgi.h, dxgi1_4.h).
var (
	iidFactory1 = windows.GUID{Data1: 0x770aae78, Data2: 0xf26f, Data3: 0x4dba, Data4: [8]byte{0xa8, 0x29, 0x25, 0x3c, 0x83, 0xd1, 0xb3, 0x87}}
	iidAdapter3 = windows.GUID{Data1: 0x645967a4, Data2: 0x1392, Data3: 0x4310, Data4: [8]byte{0xa7, 0x98, 0x80, 0x53, 0xce, 0x3e, 0x93, 0xfd}}
)

const (
	vtQueryInterface       = 0
	vtRelease              = 2
	vtEnumAdapters1        = 12 // IDXGIFactory1
	vtGetDesc1             = 10 // IDXGIAdapter1
	vtQueryVideoMemoryInfo = 14 // IDXGIAdapter3
	dxgiErrorNotFound      = 0x887A0002
	dxgiAdapterFlagSoft    = 2
	vendorMicrosoft        = 0x1414 // the Basic Render Driver
)

// dxgiAdapterDesc1 is DXGI_ADAPTER_DESC1.
type dxgiAdapterDesc1 struct {
	Description                  [128]uint16
	VendorID, DeviceID, SubSysID uint32
	Revision                     uint32
	DedicatedVideoMemory         uintptr
	DedicatedSystemMemory        uintptr
	SharedSystemMemory           uintptr
	LUIDLow                      uint32
	LUIDHigh                     int32
	Flags                        uint32
}

// dxgiVideoMemoryInfo is DXGI_QUERY_VIDEO_MEMORY_INFO.
type dxgiVideoMemoryInfo struct {
	Budget, CurrentUsage, AvailableForReservation, CurrentReservation uint64
}

// comCall calls method i of a COM object.
func comCall(obj unsafe.Pointer, i int, args ...uintptr) uintptr {
	vtbl := *(*unsafe.Pointer)(obj)
	fn := *(*uintptr)(unsafe.Add(vtbl, i*int(unsafe.Sizeof(uintptr(0)))))
	r, _, _ := syscall.SyscallN(fn, append([]uintptr{uintptr(obj)}, args...)...)
	return r
}

// adapters lists the hardware adapters (not the Basic Render Driver).
func (d *dxgiDriver) adapters() ([]adapter, error) {
	create := d.dxgi.NewProc("CreateDXGIFactory1")
	if err := create.Find(); err != nil {
		return nil, err
	}
	var factory unsafe.Pointer
	if hr, _, _ := create.Call(uintptr(unsafe.Pointer(&iidFactory1)), uintptr(unsafe.Pointer(&factory))); hr != 0 {
		return nil, fmt.Errorf("CreateDXGIFactory1: HRESULT %#x", uint32(hr))
	}
	defer comCall(factory, vtRelease)
	var out []adapter
	for i := 0; i < 16; i++ {
		var ad unsafe.Pointer
		hr := comCall(factory, vtEnumAdapters1, uintptr(i), uintptr(unsafe.Pointer(&ad)))
		if uint32(hr) == dxgiErrorNotFound {
			break
		}
		if hr != 0 {
			return nil, fmt.Errorf("EnumAdapters1(%d): HRESULT %#x", i, uint32(hr))
		}
		a, ok := describe1(ad)
		comCall(ad, vtRelease)
		if ok {
			out = append(out, a)
		}
	}
	return out, nil
}

func describe1(ad unsafe.Pointer) (adapter, bool) {
	var desc dxgiAdapterDesc1
	if hr := comCall(ad, vtGetDesc1, uintptr(unsafe.Pointer(&desc))); hr != 0 {
		return adapter{}, false
	}
	if desc.Flags&dxgiAdapterFlagSoft != 0 || desc.VendorID == vendorMicrosoft {
		return adapter{}, false
	}
	a := adapter{
		name: windows.UTF16ToString(desc.Description[:]), vendor: desc.VendorID, device: desc.DeviceID,
		dedicated: uint64(desc.DedicatedVideoMemory), shared: uint64(desc.SharedSystemMemory),
		luid: luidKey(desc.LUIDHigh, desc.LUIDLow),
	}
	var a3 unsafe.Pointer
	if comCall(ad, vtQueryInterface, uintptr(unsafe.Pointer(&iidAdapter3)), uintptr(unsafe.Pointer(&a3))) == 0 {
		var info dxgiVideoMemoryInfo
		if comCall(a3, vtQueryVideoMemoryInfo, 0, 0, uintptr(unsafe.Pointer(&info))) == 0 { // node 0, local segment
			a.budget = info.Budget
		}
		comCall(a3, vtRelease)
	}
	return a, true
}

// PDH's constants (pdh.h, pdhmsg.h).
const (
	pdhFmtLarge   = 0x00000400
	pdhMoreData   = 0x800007D2
	pdhCStatusNew = 0x00000001
)

// pdhFmtCounterValueItem is PDH_FMT_COUNTERVALUE_ITEM_W with a LONGLONG value.
type pdhFmtCounterValueItem struct {
	Name    *uint16
	CStatus uint32
	_       uint32
	Value   int64
}

// counter reads a wildcard counter by its English path (the localized
// names differ by Windows language), summing its instances per adapter
// LUID, and per process for the per-process counters.
func (d *dxgiDriver) counter(path string) (map[string]luidUse, error) {
	var query windows.Handle
	if r, _, _ := d.pdh.NewProc("PdhOpenQueryW").Call(0, 0, uintptr(unsafe.Pointer(&query))); r != 0 {
		return nil, fmt.Errorf("PdhOpenQuery: %#x", uint32(r))
	}
	defer d.pdh.NewProc("PdhCloseQuery").Call(uintptr(query))
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	var counter windows.Handle
	if r, _, _ := d.pdh.NewProc("PdhAddEnglishCounterW").Call(uintptr(query), uintptr(unsafe.Pointer(p)), 0, uintptr(unsafe.Pointer(&counter))); r != 0 {
		return nil, fmt.Errorf("PdhAddEnglishCounter(%s): %#x", path, uint32(r))
	}
	if r, _, _ := d.pdh.NewProc("PdhCollectQueryData").Call(uintptr(query)); r != 0 {
		return nil, fmt.Errorf("PdhCollectQueryData: %#x", uint32(r))
	}
	get := d.pdh.NewProc("PdhGetFormattedCounterArrayW")
	var size, count uint32
	r, _, _ := get.Call(uintptr(counter), pdhFmtLarge, uintptr(unsafe.Pointer(&size)), uintptr(unsafe.Pointer(&count)), 0)
	if uint32(r) != pdhMoreData {
		if r == 0 {
			return map[string]luidUse{}, nil
		}
		return nil, fmt.Errorf("PdhGetFormattedCounterArray: %#x", uint32(r))
	}
	itemSize := unsafe.Sizeof(pdhFmtCounterValueItem{})
	buf := make([]pdhFmtCounterValueItem, (uintptr(size)+itemSize-1)/itemSize+1)
	size = uint32(uintptr(len(buf)) * itemSize)
	if r, _, _ := get.Call(uintptr(counter), pdhFmtLarge, uintptr(unsafe.Pointer(&size)), uintptr(unsafe.Pointer(&count)), uintptr(unsafe.Pointer(&buf[0]))); r != 0 {
		return nil, fmt.Errorf("PdhGetFormattedCounterArray: %#x", uint32(r))
	}
	out := map[string]luidUse{}
	for _, it := range buf[:min(int(count), len(buf))] {
		if (it.CStatus != 0 && it.CStatus != pdhCStatusNew) || it.Value < 0 {
			continue
		}
		pid, luid, ok := parsePDHInstance(windows.UTF16PtrToString(it.Name))
		if !ok {
			continue
		}
		u := out[luid]
		u.total += uint64(it.Value)
		if pid != 0 {
			if u.perPID == nil {
				u.perPID = map[uint32]uint64{}
			}
			u.perPID[pid] += uint64(it.Value)
		}
		out[luid] = u
	}
	return out, nil
}
