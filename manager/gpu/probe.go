// Package gpu reads the graphics cards' memory through whichever driver
// answers (NVML, the kernel's amdgpu/xe/i915 files, DXGI with the GPU
// performance counters on Windows) and falls back to a configured card
// size when none does. It implements manager.GPU.
package gpu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// retryEvery is how long the probe waits before trying a driver's init
// again after it failed. Retrying at all is worth it: the tray app often
// autostarts at login before the nvidia kernel module or persistenced is
// up, and a driver update unloads the module for a while; without a retry
// the app would stay on estimates until restarted. Retrying on every Read
// is not: a failed dlopen is cheap, but a failing nvmlInit can take tens of
// milliseconds and Read runs every few seconds on the manager's loop.
const retryEvery = time.Minute

// Probe reads the cards through its drivers, initialising each lazily on
// first use and falling back to an estimate when none answers. It is safe
// for concurrent use.
type Probe struct {
	fallbackTotal uint64
	log           *slog.Logger
	now           func() time.Time

	// procName names a process by PID (Linux: /proc/PID/comm), to tell
	// Ollama's runners from other programs on the card.
	procName func(pid uint32) string

	mu     sync.Mutex
	slots  []*slot
	closed bool
	logged string // the fallback reason last logged, so each change is logged once
}

// slot is one driver and what the probe knows of it.
type slot struct {
	drv    driver
	ready  bool      // init succeeded and shutdown not called since
	tried  time.Time // last init attempt; zero before the first
	reason string    // why the driver is not in use; "" while ready
}

// New returns a probe over this system's drivers that assumes a card of
// fallbackTotal bytes when none answers. Nothing is loaded until the first
// Read. log may be nil. HOST_SYS, HOST_PROC and HOST_ROOT move the roots
// the kernel drivers' files are read from.
func New(fallbackTotal uint64, log *slog.Logger) *Probe {
	r := hostRoots()
	return newProbe(systemDrivers(r), fallbackTotal, log, time.Now)
}

func newProbe(drivers []driver, fallbackTotal uint64, log *slog.Logger, now func() time.Time) *Probe {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Probe{fallbackTotal: fallbackTotal, log: log, now: now, procName: processNames(hostRoots())}
	for _, d := range drivers {
		p.slots = append(p.slots, &slot{drv: d})
	}
	return p
}

// comm is a process's name (/proc/PID/comm), "" when it cannot be read.
func (r roots) comm(pid uint32) string {
	b, err := os.ReadFile(r.procPath(fmt.Sprint(pid), "comm"))
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

// Close shuts the drivers down that were started. Later Reads return the
// fallback.
func (p *Probe) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for _, s := range p.slots {
		s.reason = "probe closed"
		if s.ready {
			s.ready = false
			errs = append(errs, s.drv.shutdown())
		}
	}
	return errors.Join(errs...)
}

// Read returns every card apart and the sum over the cards Ollama uses
// (all but integrated GPUs), or, when no driver answers, an "estimated"
// reading of the fallback size whose Note says why. No driver answering is
// not an error: it is the normal state on a machine without a GPU, logged
// once. Read returns an error only when ctx is done or when a driver that
// was working fails; the returned VRAM is usable even then.
func (p *Probe) Read(ctx context.Context) (card.VRAM, error) {
	if err := ctx.Err(); err != nil {
		return p.fallback("read cancelled", nil), err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rs, err := p.readLocked(ctx, func(pid uint32) bool { return isOllama(p.procName(pid)) })
	return p.sum(rs), err
}

// readLocked reads every driver that is ready, leaving out cards of a
// vendor an earlier driver already read. Called with p.mu held.
func (p *Probe) readLocked(ctx context.Context, want func(uint32) bool) ([]reading, error) {
	var (
		out     []reading
		errs    []error
		covered = map[uint16]bool{}
	)
	for _, s := range p.slots {
		if !p.ensure(s) {
			continue
		}
		rs, err := s.drv.read(ctx, want)
		if err != nil {
			err = fmt.Errorf("%s: %w", s.drv.name(), err)
			if ctx.Err() == nil {
				p.fail(s, err.Error())
			}
			errs = append(errs, err)
			continue
		}
		vendors := map[uint16]bool{}
		for _, r := range rs {
			if r.vendor != 0 && covered[r.vendor] {
				continue
			}
			vendors[r.vendor] = true
			out = append(out, r)
		}
		for v := range vendors {
			covered[v] = true
		}
	}
	return out, errors.Join(errs...)
}

// sum makes the reading the manager sees: the cards apart, and their sum
// over the discrete ones.
func (p *Probe) sum(rs []reading) card.VRAM {
	var (
		cards         []card.Card
		v             card.VRAM
		names         []string
		sources       []string
		perSource     = map[string]int{}
		reserved      uint64
		integrated    []card.Card
		discreteCount int
	)
	for _, r := range rs {
		c := r.card
		if r.procsErr == nil {
			c.OllamaKnown = true
			for _, pr := range r.procs {
				name := pr.Name
				if name == "" {
					name = p.procName(pr.PID)
				}
				if isOllama(name) {
					c.Ollama += pr.Used
				}
			}
		}
		cards = append(cards, c)
		if c.Integrated {
			integrated = append(integrated, c)
			continue
		}
		discreteCount++
		v.Total += c.Total
		v.Used += c.Used
		v.Free += c.Free
		v.Ollama += c.Ollama
		reserved += r.reserved
		names = append(names, c.Name)
		if perSource[c.Source] == 0 {
			sources = append(sources, c.Source)
		}
		perSource[c.Source]++
	}
	if discreteCount == 0 {
		v := p.fallback(p.reasons(), integrated)
		p.logFallback(v.Note)
		return v
	}
	v.Source, v.Name, v.Cards = strings.Join(sources, "+"), joinNames(names), cards
	// The note says what the source does not: how many GPUs, per driver
	// when several answer.
	var notes []string
	for _, s := range sources {
		n := perSource[s]
		note := fmt.Sprintf("%d GPU", n)
		if n != 1 {
			note += "s"
		}
		if len(sources) > 1 {
			note = card.SourceLabel(s) + ": " + note
		} else if n > 1 {
			note += " summed"
		}
		notes = append(notes, note)
	}
	if len(sources) > 1 {
		notes = append(notes, fmt.Sprintf("%d GPUs summed", discreteCount))
	}
	if reserved > 0 {
		notes = append(notes, config.FormatBytes(reserved)+" reserved by the driver, counted as used")
	}
	for _, c := range integrated {
		notes = append(notes, c.Name+" is integrated (shares system memory), not counted")
	}
	v.Note = strings.Join(notes, "; ")
	return v
}

// Processes returns the GPU memory each process uses, summed over cards,
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
	rs, err := p.readLocked(ctx, nil)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, p.reasons())
	}
	out := map[uint32]uint64{}
	unsupported := 0
	for _, r := range rs {
		if errors.Is(r.procsErr, ErrNotSupported) {
			unsupported++
			continue
		}
		if r.procsErr != nil {
			return nil, r.procsErr
		}
		for _, pr := range r.procs {
			out[pr.PID] += pr.Used
		}
	}
	if unsupported == len(rs) {
		return nil, fmt.Errorf("%w on any of %d GPUs", ErrNotSupported, len(rs))
	}
	return out, nil
}

// ensure makes a driver ready if it can, trying at most once per
// retryEvery. It reports whether the driver is ready. Called with p.mu
// held.
func (p *Probe) ensure(s *slot) bool {
	if s.ready {
		return true
	}
	if p.closed {
		return false
	}
	now := p.now()
	if !s.tried.IsZero() && now.Sub(s.tried) < retryEvery {
		return false
	}
	s.tried = now
	if err := s.drv.init(); err != nil {
		s.reason = describe(err)
		return false
	}
	s.ready, s.reason = true, ""
	p.logged = ""
	p.log.Info(s.drv.name()+" ready", "driver", s.drv.name())
	return true
}

// fail records that a working driver stopped answering: shut it down and
// let ensure retry after retryEvery.
func (p *Probe) fail(s *slot, reason string) {
	s.ready = false
	s.tried = p.now()
	_ = s.drv.shutdown() // best effort: the driver already misbehaves
	s.reason = reason
}

// reasons says why each driver is not in use.
func (p *Probe) reasons() string {
	var parts []string
	for _, s := range p.slots {
		if s.reason != "" {
			parts = append(parts, s.drv.name()+" unavailable: "+s.reason)
		}
	}
	if len(parts) == 0 {
		return "no GPU driver in this build"
	}
	return strings.Join(parts, "; ")
}

// fallback is the reading when no driver answers for a card Ollama uses:
// the configured size, with why, and the integrated GPUs found.
func (p *Probe) fallback(why string, integrated []card.Card) card.VRAM {
	if len(integrated) > 0 {
		names := make([]string, len(integrated))
		for i, c := range integrated {
			names[i] = c.Name
		}
		why = joinNames(names) + " is integrated (shares system memory)"
	}
	return card.VRAM{
		Source: card.SourceEstimated,
		Total:  p.fallbackTotal,
		Note:   fmt.Sprintf("%s; using --vram %s", why, config.FormatBytes(p.fallbackTotal)),
		Cards:  integrated,
	}
}

// logFallback logs why the configured size is used when that changed, so
// a machine without a GPU logs one line, not one per Read.
func (p *Probe) logFallback(note string) {
	if note == p.logged {
		p.log.Debug("still no GPU driver answers", "note", note)
		return
	}
	p.logged = note
	p.log.Warn("no GPU driver answers, using the configured card size",
		"note", note, "retry_every", retryEvery)
}

// describe turns an init error into the short reason shown in the UI.
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
