package gpu

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/vramkeeper/vramkeeper/manager/card"
)

// nvmlLib is the slice of NVML the NVML driver needs. The real ones are
// thin wrappers: go-nvml on Linux (nvml_linux.go), nvml.dll on Windows
// (nvml_windows.go); tests use a fake with any number of cards.
type nvmlLib interface {
	// Init loads the library and the driver; errors wrap errNoLibrary
	// when the library cannot be loaded.
	Init() error
	Shutdown() error
	// Devices is the number of GPUs seen by Init.
	Devices() int
	Device(i int) (device, error)
	// Processes lists compute processes on GPU i; errors wrap
	// ErrNotSupported when the driver cannot tell.
	Processes(i int) ([]process, error)
}

// device is one GPU's reading. Used includes memory the driver reserves
// for itself, so that Used + Free = Total: reserved memory is as
// unavailable to models as memory another program holds.
type device struct {
	Name     string
	BusID    string // PCI address ("0000:01:00.0"); "" when unknown
	Total    uint64
	Used     uint64
	Free     uint64
	Reserved uint64 // part of Used; 0 where the driver only has the v1 call
}

// nvmlDriver reads NVIDIA cards through NVML, on any system with a lib.
type nvmlDriver struct{ lib nvmlLib }

func (nvmlDriver) name() string { return "NVML" }

func (d nvmlDriver) init() error {
	if err := d.lib.Init(); err != nil {
		return err
	}
	if d.lib.Devices() == 0 {
		_ = d.lib.Shutdown() // nothing to read; the error says so
		return errors.New("no NVIDIA GPU found")
	}
	return nil
}

func (d nvmlDriver) shutdown() error {
	if err := d.lib.Shutdown(); err != nil {
		return fmt.Errorf("nvml shutdown: %w", err)
	}
	return nil
}

// read lists every compute process: NVML does it in one call per card,
// so want is not needed.
func (d nvmlDriver) read(_ context.Context, _ func(uint32) bool) ([]reading, error) {
	n := d.lib.Devices()
	out := make([]reading, 0, n)
	for i := range n {
		dev, err := d.lib.Device(i)
		if err != nil {
			return nil, fmt.Errorf("read GPU %d: %w", i, err)
		}
		r := reading{
			card: card.Card{Name: dev.Name, Source: card.SourceNVML, ID: dev.BusID,
				Total: dev.Total, Used: dev.Used, Free: dev.Free},
			vendor: vendorNVIDIA, reserved: dev.Reserved,
		}
		procs, err := d.lib.Processes(i)
		if err != nil {
			r.procsErr = fmt.Errorf("processes on GPU %d: %w", i, err)
		}
		for _, p := range procs {
			if p.Used == math.MaxUint64 {
				p.Used = 0 // unknown (Windows WDDM): listed, counted as nothing
			}
			r.procs = append(r.procs, p)
		}
		out = append(out, r)
	}
	return out, nil
}

// busID turns NVML's PCI bus id ("00000000:01:00.0", NUL-terminated) into
// the kernel's form ("0000:01:00.0"), so both drivers name a card alike.
func busID[T int8 | byte](raw []T) string {
	b := make([]byte, 0, len(raw))
	for _, c := range raw {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	s := strings.ToLower(string(b))
	if dom, rest, ok := strings.Cut(s, ":"); ok && len(dom) > 4 && strings.Trim(dom[:len(dom)-4], "0") == "" {
		s = dom[len(dom)-4:] + ":" + rest
	}
	return s
}
