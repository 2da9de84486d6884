// Package gpu reads the graphics card's memory through NVML and falls back
// to a configured card size when there is no NVIDIA driver. It implements
// manager.GPU.
package gpu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// Errors Processes returns, wrapped with the reason.
var (
	// ErrUnavailable: NVML could not be used (no library, no driver, no GPU).
	ErrUnavailable = errors.New("NVML unavailable")
	// ErrNotSupported: the driver does not report per-process memory.
	ErrNotSupported = errors.New("per-process GPU memory not supported")
)

// retryEvery is how long the probe waits before trying nvmlInit again after
// it failed. Retrying at all is worth it: the tray app often autostarts at
// login before the nvidia kernel module or persistenced is up, and a driver
// update unloads the module for a while; without a retry the app would stay
// on estimates until restarted. Retrying on every Read is not: a failed
// dlopen is cheap, but a failing nvmlInit can take tens of milliseconds and
// Read runs every few seconds on the manager's loop.
const retryEvery = time.Minute

// device is one GPU's reading. Used here includes memory the driver reserves
// for itself, so that Used + Free = Total: reserved memory is as unavailable
// to models as memory another program holds.
type device struct {
	Name     string
	Total    uint64
	Used     uint64
	Free     uint64
	Reserved uint64 // part of Used; 0 where the driver only has the v1 call
}

// process is one process's use of one GPU.
type process struct {
	PID  uint32
	Used uint64 // bytes; math.MaxUint64 when the driver does not know
}

// driver is the slice of NVML the probe needs. The real one (nvml.go) is a
// thin wrapper over go-nvml; tests use a fake, so the summing and the
// fallback are tested without a GPU.
type driver interface {
	// Init loads the library and the driver; errors wrap errNoLibrary when
	// libnvidia-ml.so cannot be loaded.
	Init() error
	Shutdown() error
	// Devices is the number of GPUs seen by Init.
	Devices() int
	Device(i int) (device, error)
	// Processes lists compute processes on GPU i; errors wrap
	// ErrNotSupported when the driver cannot tell.
	Processes(i int) ([]process, error)
}

// errNoLibrary marks an Init failure because the library is absent.
var errNoLibrary = errors.New("libnvidia-ml.so not found")

// Probe reads VRAM through NVML, initialising it lazily on first use and
// falling back to an estimate when NVML is unavailable. It is safe for
// concurrent use.
type Probe struct {
	fallbackTotal uint64
	log           *slog.Logger
	now           func() time.Time

	// procName names a process by PID (Linux: /proc/PID/comm), to tell
	// Ollama's runners from other programs on the card.
	procName func(pid uint32) string

	mu        sync.Mutex
	drv       driver
	ready     bool      // Init succeeded and Shutdown not called since
	tried     time.Time // last Init attempt; zero before the first
	reason    string    // why NVML is not in use; "" while ready
	logged    string    // the reason last logged, so each change is logged once
	closed    bool
	everReady bool
}

// New returns a probe that assumes a card of fallbackTotal bytes when NVML
// is unavailable. Nothing is loaded until the first Read. log may be nil.
func New(fallbackTotal uint64, log *slog.Logger) *Probe {
	return newProbe(newDriver(), fallbackTotal, log, time.Now)
}

func newProbe(drv driver, fallbackTotal uint64, log *slog.Logger, now func() time.Time) *Probe {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Probe{drv: drv, fallbackTotal: fallbackTotal, log: log, now: now, procName: procComm}
}

func procComm(pid uint32) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// isOllama reports whether a process name is one of Ollama's: the server
// and its runners ("ollama"), or llama-server, its only engine from v0.30.
func isOllama(name string) bool {
	return strings.HasPrefix(name, "ollama") || name == "llama-server"
}

// Close shuts NVML down if it was started. Later Reads return the fallback.
func (p *Probe) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.reason = "probe closed"
	if !p.ready {
		return nil
	}
	p.ready = false
	if err := p.drv.Shutdown(); err != nil {
		return fmt.Errorf("nvml shutdown: %w", err)
	}
	return nil
}

// Read returns the summed memory of all NVIDIA GPUs, or, when NVML is
// unavailable, an "estimated" reading of the fallback size whose Note says
// why. NVML being unavailable is not an error: it is the normal state on a
// machine without an NVIDIA driver, logged once. Read returns an error only
// when ctx is done or when a query fails on a driver that was working; the
// returned VRAM is usable even then (the fallback).
func (p *Probe) Read(ctx context.Context) (manager.VRAM, error) {
	if err := ctx.Err(); err != nil {
		return p.fallback("read cancelled"), err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ensure() {
		return p.fallback(p.reason), nil
	}
	var (
		v        = manager.VRAM{Source: manager.SourceNVML}
		names    []string
		reserved uint64
	)
	n := p.drv.Devices()
	for i := range n {
		d, err := p.drv.Device(i)
		if err != nil {
			err = fmt.Errorf("read GPU %d: %w", i, err)
			p.fail(err.Error())
			return p.fallback(p.reason), err
		}
		v.Total += d.Total
		v.Used += d.Used
		v.Free += d.Free
		reserved += d.Reserved
		names = append(names, d.Name)
	}
	v.Name = joinNames(names)
	// Ollama's own share, where the driver lists processes; unknown (0)
	// otherwise, and the manager falls back to Ollama's reported sizes.
	if procs, err := p.processesLocked(); err == nil {
		for pid, used := range procs {
			if isOllama(p.procName(pid)) {
				v.Ollama += used
			}
		}
	}
	notes := []string{fmt.Sprintf("NVML: %d GPU", n)}
	if n != 1 {
		notes[0] += "s summed"
	}
	if reserved > 0 {
		notes = append(notes, config.FormatBytes(reserved)+" reserved by the driver, counted as used")
	}
	v.Note = strings.Join(notes, "; ")
	return v, nil
}

// Processes returns the GPU memory each process uses, summed over GPUs,
// keyed by PID, for telling our Ollama runners' share from other programs'.
// A process whose use the driver cannot report (e.g. under Windows WDDM)
// appears with 0. PIDs are as the driver sees them: inside a container
// without the host PID namespace they will not match the runners' PIDs.
func (p *Probe) Processes(ctx context.Context) (map[uint32]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ensure() {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, p.reason)
	}
	return p.processesLocked()
}

func (p *Probe) processesLocked() (map[uint32]uint64, error) {
	out := map[uint32]uint64{}
	n, unsupported := p.drv.Devices(), 0
	for i := range n {
		procs, err := p.drv.Processes(i)
		if errors.Is(err, ErrNotSupported) {
			unsupported++
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("processes on GPU %d: %w", i, err)
		}
		for _, pr := range procs {
			used := pr.Used
			if used == math.MaxUint64 {
				used = 0
			}
			out[pr.PID] += used
		}
	}
	if n > 0 && unsupported == n {
		return nil, fmt.Errorf("%w on any of %d GPUs", ErrNotSupported, n)
	}
	return out, nil
}

// ensure makes NVML ready if it can, trying at most once per retryEvery.
// It reports whether NVML is ready. Called with p.mu held.
func (p *Probe) ensure() bool {
	if p.ready {
		return true
	}
	if p.closed {
		return false
	}
	now := p.now()
	if !p.tried.IsZero() && now.Sub(p.tried) < retryEvery {
		return false
	}
	p.tried = now
	if err := p.drv.Init(); err != nil {
		p.setReason(describe(err))
		return false
	}
	if p.drv.Devices() == 0 {
		_ = p.drv.Shutdown() // nothing to read; the reason below says so
		p.setReason("no NVIDIA GPU found")
		return false
	}
	p.ready = true
	if p.logged != "" || !p.everReady {
		p.log.Info("NVML ready", "gpus", p.drv.Devices())
	}
	p.reason, p.logged, p.everReady = "", "", true
	return true
}

// fail records that a working NVML stopped answering: shut it down and let
// ensure retry after retryEvery.
func (p *Probe) fail(reason string) {
	p.ready = false
	p.tried = p.now()
	_ = p.drv.Shutdown() // best effort: the driver already misbehaves
	p.setReason(reason)
}

// setReason records why NVML is unavailable and logs it when it changed, so
// a machine without a driver logs one line, not one per Read.
func (p *Probe) setReason(reason string) {
	p.reason = reason
	if reason == p.logged {
		p.log.Debug("NVML still unavailable", "reason", reason)
		return
	}
	p.logged = reason
	p.log.Warn("NVML unavailable, using the configured card size",
		"reason", reason, "vram", config.FormatBytes(p.fallbackTotal), "retry_every", retryEvery)
}

func (p *Probe) fallback(reason string) manager.VRAM {
	return manager.VRAM{
		Source: manager.SourceEstimated,
		Total:  p.fallbackTotal,
		Note:   fmt.Sprintf("NVML unavailable: %s; using --vram %s", reason, config.FormatBytes(p.fallbackTotal)),
	}
}

// describe turns an Init error into the short reason shown in the UI.
func describe(err error) string {
	if errors.Is(err, errNoLibrary) {
		return errNoLibrary.Error()
	}
	return err.Error()
}

// joinNames joins device names, folding repeats: "2× NVIDIA RTX A4000".
func joinNames(names []string) string {
	var out []string
	count := map[string]int{}
	for _, n := range names {
		if count[n] == 0 {
			out = append(out, n)
		}
		count[n]++
	}
	for i, n := range out {
		if c := count[n]; c > 1 {
			out[i] = fmt.Sprintf("%d× %s", c, n)
		}
	}
	return strings.Join(out, ", ")
}
