package manager

import (
	"context"
	"fmt"
	"maps"

	"github.com/vramkeeper/vramkeeper/manager/serving"
	"golang.org/x/sync/errgroup"
)

// Discovery: the installed models listed and their details read, in
// workers the owner starts, without loading anything.

// discover lists the installed models and shows the new or changed ones,
// without loading anything.
func (m *Manager) discover() {
	if m.cat.listing || m.spawn == nil {
		return
	}
	m.cat.listing = true
	known := map[string]string{}
	for n, md := range m.cat.models {
		if md.detailed {
			known[n] = md.inst.Digest
		}
	}
	cached := maps.Clone(m.cat.details)
	m.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, discoverDeadline)
		defer cancel()
		list, err := m.rt.List(ctx)
		var results []shown
		if err == nil {
			results = m.showAll(ctx, list, known, cached)
		}
		m.report(evListed{results: results, err: err})
	})
}

func (m *Manager) showAll(ctx context.Context, list []serving.Installed, known map[string]string, cached map[string]serving.Details) []shown {
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
		if det, ok := inst.Listed(); ok {
			// The list says enough to rank it: /api/show waits until its
			// estimate is needed or discovery is done (fill).
			out[i].det, out[i].listed = det, true
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

func (m *Manager) listed(e evListed) {
	m.cat.listing = false
	m.cat.listErr = e.err
	for _, ch := range m.listWaiters {
		m.wake(ch, e.err)
	}
	m.listWaiters = nil
	m.serverAnswered(e.err)
	if e.err == nil {
		changed, cacheChanged := m.cat.merge(e.results, m.tune.Settings, m.sched.isActive)
		if cacheChanged {
			m.store.saveCatalog(maps.Clone(m.cat.details))
		}
		if changed {
			m.emit(Event{Kind: EventModelsChange, Reason: fmt.Sprintf("%d models installed", len(e.results))})
		}
		m.fill(m.cat.undetailed()...)
	}
	m.sched.OnListed()
}

// fill reads /api/show for models the list alone described, a few at a
// time, so their estimates follow discovery without holding it up.
func (m *Manager) fill(names ...string) {
	var todo []serving.Installed
	for _, n := range names {
		if md := m.cat.models[n]; md != nil && !md.detailed && !md.showing {
			md.showing = true
			todo = append(todo, md.inst)
		}
	}
	if len(todo) == 0 || m.spawn == nil {
		return
	}
	m.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, discoverDeadline)
		defer cancel()
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(showParallel)
		for _, inst := range todo {
			g.Go(func() error {
				det, err := m.rt.Show(gctx, inst.Name)
				if err != nil {
					err = fmt.Errorf("show %s: %w", inst.Name, err)
				}
				m.report(evShown{shown{inst: inst, det: det, err: err}})
				return nil
			})
		}
		_ = g.Wait()
	})
}

// shown takes one model's /api/show answer read after discovery.
func (m *Manager) shown(e evShown) {
	md := m.cat.models[e.inst.Name]
	if md == nil || md.inst.Digest != e.inst.Digest {
		return // deleted or changed since: the next listing tells
	}
	if m.cat.show(md, e.det, e.err, true, m.tune.Settings) {
		m.store.saveCatalog(maps.Clone(m.cat.details))
	}
	m.sched.OnListed()
}
