package manager

import (
	"context"
	"errors"

	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/estimate"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// connection is what the owner knows of the server and the card: whether
// Ollama answers, its version, and the last reading of the card.
type connection struct {
	known, up, everUp bool
	version           string
	err               string // why the server is unreachable
	vram              card.VRAM
	vramErr           string
	// oursAtRead is what our models held when vram was read, so that a
	// model unloaded since does not count as other programs' until the
	// next reading.
	oursAtRead uint64
}

// setUp records whether the server answered; it returns the event to emit
// when that changed (nil otherwise). Ollama answering at the first look is
// no news; answering after it was said to be down is, the first time too
// (a first run starts it after).
func (c *connection) setUp(up bool, err error) *Event {
	changed := !c.known || c.up != up
	wasDown := c.known && !c.up
	c.known, c.up, c.err = true, up, errString(err)
	if !changed {
		return nil
	}
	if !up {
		why := "Ollama is unreachable"
		if err != nil && !errors.Is(err, ErrUnreachable) {
			why = "Ollama answers with errors"
		}
		return &Event{Kind: EventOllamaDown, Error: errString(err), Reason: why}
	}
	again := c.everUp
	c.everUp = true
	switch {
	case !wasDown:
		return nil
	case again:
		return &Event{Kind: EventOllamaUp, Reason: "Ollama is reachable again"}
	default:
		return &Event{Kind: EventOllamaUp, Reason: "Ollama answers now"}
	}
}

// others is what other programs hold on the card, when the driver says:
// what it counts beyond Ollama's processes (the CUDA context is Ollama's,
// not theirs), or beyond our models' reported sizes when it cannot tell.
func (c *connection) others() uint64 {
	v := c.vram
	if !v.Measured() {
		return 0
	}
	ollama := max(v.Ollama, c.oursAtRead)
	return max(v.Used, ollama) - ollama
}

// device is where the estimator should assume models live: on the GPU when
// the driver answers or Ollama reports VRAM for a loaded model (onGPU), on
// the CPU otherwise (no driver and nothing on a GPU: Ollama runs on the CPU).
func (c *connection) device(onGPU bool) estimate.Device {
	if c.vram.Measured() || onGPU {
		return estimate.GPU
	}
	return estimate.CPU
}

func (c *connection) reading() card.VRAM { return c.vram }

// readCard records a reading of the card.
func (m *Manager) readCard(v card.VRAM, err error) {
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			m.conn.vramErr = err.Error()
			m.log.Warn("GPU read failed", "err", err)
		}
		return
	}
	m.conn.vramErr = ""
	if ours := m.sched.ours(); ours != m.conn.oursAtRead {
		m.conn.oursAtRead = ours
		m.changed.header() // what other programs hold
	}
	if !m.conn.vram.Equal(v) {
		if cardTotals(m.conn.vram) != nil || cardTotals(v) != nil {
			m.changed.everyModel() // where each model would go (placement)
		}
		m.conn.vram = v
		m.changed.header()
		m.emit(Event{Kind: EventVRAM, Bytes: v.Used})
	}
}

// serverAnswered records whether the server answered; when it comes back,
// the models are listed again (it may have been restarted with others).
func (m *Manager) serverAnswered(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) && m.sched.status().loadRunning {
		// From v0.32 /api/ps waits for a load in progress: slow, not down.
		m.log.Debug("Ollama slow to answer while it loads", "err", err)
		return
	}
	wasDown := m.conn.known && !m.conn.up
	was := m.conn
	e := m.conn.setUp(err == nil, err)
	if m.conn.up != was.up || m.conn.err != was.err {
		m.changed.header() // whether Ollama answers, and why not
	}
	if e != nil {
		m.emit(*e)
	}
	if err == nil && wasDown {
		m.discover()
	}
}

// poll reads /api/ps, the server's version and the card.
func (m *Manager) poll() {
	if m.polling || m.spawn == nil {
		return
	}
	m.polling = true
	// /api/ps already proves the server is up; the version is asked once
	// per (re)connection, not on every poll.
	needVersion := m.conn.version == "" || !m.conn.up
	since := m.sched.changes
	m.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, readDeadline)
		defer cancel()
		e := evPolled{since: since}
		e.ps, e.err = m.rt.Running(ctx)
		if e.err == nil && needVersion {
			e.version, e.err = m.rt.Version(ctx)
		}
		e.vram, e.vramErr = m.gpu.Read(ctx)
		m.report(e)
	})
}

func (m *Manager) polled(e evPolled) {
	m.polling = false
	if e.version != "" && e.version != m.conn.version {
		m.conn.version, m.cat.version = e.version, e.version
		m.changed.header()
		m.cat.evaluateAll(m.tune.Settings) // measured sizes are per version
	}
	m.readCard(e.vram, e.vramErr)
	m.serverAnswered(e.err)
	if e.err == nil {
		m.sched.OnPoll(e.ps, e.since)
	}
	m.sample()
	for _, ch := range m.pollWaiters {
		m.wake(ch, e.err)
	}
	m.pollWaiters = nil
}

// sample records the card as the last poll left it, for the charts.
func (m *Manager) sample() {
	s := timeline.Sample{Time: m.now(), Models: map[string]uint64{}, Others: m.conn.others(), Budget: m.sched.status().budget,
		Total: m.conn.vram.Total, Source: m.conn.vram.Source}
	for name, size := range m.sched.onCard() {
		if size > 0 {
			s.Models[name] = size
		}
	}
	_ = m.timeline.Add(s)
}
