package manager

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"golang.org/x/sync/errgroup"
)

// showParallel bounds concurrent /api/show calls: enough to hide latency,
// few enough not to stall a server that is busy loading.
const showParallel = 4

type shown struct {
	inst Installed
	det  Details
	err  error
}

// startDiscovery lists the installed models and shows the new or changed
// ones, without loading anything.
func (m *Manager) startDiscovery() {
	s := &m.st
	if s.discovering || s.spawn == nil {
		return
	}
	s.discovering = true
	known := map[string]string{}
	for n, md := range s.models {
		if md.hasDetails {
			known[n] = md.inst.Digest
		}
	}
	cached := maps.Clone(s.catalog)
	s.spawn(func(ctx context.Context) {
		list, err := m.rt.List(ctx)
		var results []shown
		if err == nil {
			results = m.showAll(ctx, list, known, cached)
		}
		m.report(func() { m.discovered(list, results, err) })
	})
}

func (m *Manager) showAll(ctx context.Context, list []Installed, known map[string]string, cached catalog) []shown {
	out := make([]shown, len(list))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(showParallel)
	for i, inst := range list {
		out[i].inst = inst
		if d, ok := known[inst.Name]; ok && d == inst.Digest {
			continue // unchanged: keep what we have
		}
		if det, ok := cached[inst.Digest]; ok && inst.Digest != "" {
			det.Name = inst.Name // the same manifest may be installed under several names
			out[i].det = det
			continue
		}
		g.Go(func() error {
			det, err := m.rt.Show(gctx, inst.Name)
			if err != nil {
				err = fmt.Errorf("show %s: %w", inst.Name, err)
			}
			out[i].det, out[i].err = det, err
			return nil // one broken model must not hide the others
		})
	}
	_ = g.Wait()
	return out
}

// discovered merges a listing into the catalogue.
func (m *Manager) discovered(list []Installed, results []shown, err error) {
	s := &m.st
	s.discovering = false
	s.discoverErr = err
	m.wake(s.discoverWaiters, err)
	s.discoverWaiters = nil
	if err != nil {
		m.setUp(false, err)
		return
	}
	m.setUp(true, nil)
	s.discovered = true
	changed := false
	seen := map[string]bool{}
	digests := map[string]bool{}
	catalogChanged := false
	for _, r := range results {
		seen[r.inst.Name] = true
		digests[r.inst.Digest] = true
		md, ok := s.models[r.inst.Name]
		if !ok {
			md = &model{state: Idle}
			if u, ok := s.usage[r.inst.Name]; ok {
				md.lastUsed, md.uses = u.LastUsed, u.Uses
			}
			s.models[r.inst.Name] = md
			changed = true
		}
		unchanged := md.hasDetails && md.inst.Digest == r.inst.Digest
		md.inst = r.inst
		if unchanged {
			continue
		}
		changed = true
		if r.err != nil {
			md.showErr = r.err
			md.hasDetails = false
			continue
		}
		md.det, md.hasDetails, md.showErr = r.det, true, nil
		s.evaluate(md)
		if _, ok := s.catalog[r.inst.Digest]; !ok && r.inst.Digest != "" {
			s.catalog[r.inst.Digest] = r.det
			catalogChanged = true
		}
	}
	for n, md := range s.models {
		if !seen[n] && md.state != Loaded && md.state != Loading && md.state != Unloading {
			delete(s.models, n)
			s.gen++
			changed = true
		}
	}
	for d := range s.catalog {
		if !digests[d] {
			delete(s.catalog, d) // deleted from Ollama: forget it
			catalogChanged = true
		}
	}
	if catalogChanged {
		if err := saveJSON(m.catalogPath, s.catalog); err != nil {
			m.log.Warn("model catalogue not saved", "err", err)
		}
	}
	if changed {
		m.emit(Event{Kind: EventModelsChange, Reason: fmt.Sprintf("%d models installed", len(list))})
	}
}

// startPoll reads /api/ps, the server's version and the driver.
func (m *Manager) startPoll() {
	s := &m.st
	if s.polling || s.spawn == nil {
		return
	}
	s.polling = true
	// /api/ps already proves the server is up; the version is only shown,
	// so it is asked once per (re)connection, not on every poll.
	needVersion := s.version == "" || !s.up
	s.spawn(func(ctx context.Context) {
		ps, err := m.rt.Running(ctx)
		var version string
		if err == nil && needVersion {
			version, err = m.rt.Version(ctx)
		}
		v, gErr := m.gpu.Read(ctx)
		m.report(func() {
			s.polling = false
			if version != "" {
				s.version = version
			}
			m.applyPoll(ps, err, v, gErr)
			m.wake(s.pollWaiters, err)
			s.pollWaiters = nil
		})
	})
}

func (m *Manager) applyPoll(ps []Running, psErr error, v VRAM, gErr error) {
	s := &m.st
	if gErr == nil {
		old := s.vram
		s.vram = v
		if old != v {
			if old.Total != v.Total {
				for _, md := range s.models {
					s.evaluate(md)
				}
			}
			m.emit(Event{Kind: EventVRAM, Bytes: v.Used})
		}
	} else if !errors.Is(gErr, context.Canceled) {
		s.vramErr = gErr
		m.log.Warn("GPU read failed", "err", gErr)
	}
	if psErr != nil {
		if !errors.Is(psErr, context.Canceled) {
			m.setUp(false, psErr)
		}
		return
	}
	wasDown := s.upKnown && !s.up
	m.setUp(true, nil)
	if wasDown {
		m.startDiscovery()
	}
	m.applyRunning(ps)
}

// applyRunning reconciles the loaded set with what the server reports:
// models loaded by other clients are adopted and counted against the
// budget, ours that vanished (another client, a restart) are marked idle.
func (m *Manager) applyRunning(ps []Running) {
	s := &m.st
	running := map[string]Running{}
	for _, r := range ps {
		running[r.Name] = r
	}
	for name, r := range running {
		md := s.models[name]
		if md == nil {
			// Loaded but not (yet) listed: track it so its bytes count.
			md = &model{inst: Installed{Name: name, Digest: r.Digest}, state: Idle}
			s.models[name] = md
			m.startDiscovery()
		}
		md.size = r.VRAMBytes
		md.onGPU = r.VRAMBytes > 0
		if md.size == 0 {
			md.size = r.SizeBytes
		}
		if md.state == Idle || md.state == Failed {
			m.mustTransition(md, Loaded)
			md.loadedCtx = r.ContextLength
			m.emit(Event{Kind: EventLoaded, Model: name, Bytes: md.size, Reason: "found loaded in Ollama (adopted)"})
		}
	}
	for name, md := range s.models {
		if _, ok := running[name]; ok || md.state != Loaded {
			continue
		}
		if s.current != nil && s.current.name == name {
			continue
		}
		m.mustTransition(md, Idle)
		size := md.size
		md.size, md.loadedCtx, md.inflight = 0, 0, 0
		m.emit(Event{Kind: EventUnloaded, Model: name, Bytes: size, Reason: "no longer loaded in Ollama (unloaded by another client, or Ollama restarted)"})
	}
}

func (m *Manager) setUp(up bool, err error) {
	s := &m.st
	changed := !s.upKnown || s.up != up
	s.upKnown, s.up = true, up
	s.runtimeErr = errString(err)
	if !changed {
		return
	}
	if up {
		if s.everUp {
			m.emit(Event{Kind: EventOllamaUp, Reason: "Ollama is reachable again"})
		}
		s.everUp = true
		return
	}
	m.emit(Event{Kind: EventOllamaDown, Error: errString(err), Reason: "Ollama is unreachable"})
}
