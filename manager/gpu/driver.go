package gpu

import (
	"context"
	"errors"

	"github.com/vramkeeper/vramkeeper/manager/card"
)

// driver is one way of reading cards: NVML (libnvidia-ml.so or nvml.dll),
// the kernel's amdgpu/xe/i915 files, DXGI with the GPU performance
// counters. The probe asks each in turn and keeps what answers.
type driver interface {
	// name is how notes and logs call it ("NVML", "DRM", "DXGI").
	name() string
	// init loads what the driver needs; an error says why it cannot be
	// used (no library, no card of its kind), and init is tried again a
	// minute later.
	init() error
	shutdown() error
	// read reads every card the driver sees. want picks the processes
	// worth listing per card (Ollama's, for Read; nil: all); a driver
	// that lists every process cheaply may ignore it. An error means a
	// working driver stopped answering.
	read(ctx context.Context, want func(pid uint32) bool) ([]reading, error)
}

// reading is one card as its driver reads it.
type reading struct {
	// card: Name, Source, ID, Total, Used, Free, Integrated; the probe
	// fills Ollama from procs.
	card card.Card
	// vendor is the PCI vendor id, so that a later driver leaves out a
	// card an earlier one already read (DXGI sees NVIDIA's cards too).
	vendor uint16
	// reserved is the part of Used the driver keeps for itself.
	reserved uint64
	// procs are the processes on this card (those want picked); procsErr
	// says why they are unknown.
	procs    []process
	procsErr error
}

// process is one process's use of one card.
type process struct {
	PID  uint32
	Used uint64 // bytes; math.MaxUint64 when the driver does not know
	// Name is the process's name when the driver read it already ("" to
	// ask the probe).
	Name string
}

// PCI vendor ids.
const (
	vendorNVIDIA = 0x10de
	vendorAMD    = 0x1002
	vendorIntel  = 0x8086
)

// Errors Processes returns, wrapped with the reason.
var (
	// ErrUnavailable: no driver could be used (no library, no card).
	ErrUnavailable = errors.New("no GPU driver answers")
	// ErrNotSupported: the driver does not report per-process memory.
	ErrNotSupported = errors.New("per-process GPU memory not supported")
)

// errNoLibrary marks an init failure because the vendor library is absent.
var errNoLibrary = errors.New("libnvidia-ml.so not found")
