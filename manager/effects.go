package manager

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// The scheduler's effects: what it decides is done here, away from the
// owner (each piece of I/O in a worker with a deadline), and reported back
// as events.

// effects carry out what the scheduler decides.
type effects struct{ m *Manager }

func (x effects) ReadServer(op uint64) {
	m := x.m
	m.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, readDeadline)
		defer cancel()
		e := evRefreshed{op: op}
		e.ps, e.err = m.rt.Running(ctx)
		e.vram, e.vramErr = m.gpu.Read(ctx)
		m.report(e)
	})
}

func (x effects) Load(op uint64, req serving.LoadRequest, within time.Duration) {
	m := x.m
	m.spawn(func(ctx context.Context) {
		e := evLoaded{op: op}
		e.took, e.err = timed(ctx, within, func(ctx context.Context) error { return m.rt.Load(ctx, req) },
			"%s did not load within %s (load_timeout), so the request was cancelled", req.Name)
		if e.err == nil {
			rctx, cancel := context.WithTimeout(ctx, readDeadline)
			defer cancel()
			e.ps, e.err = m.rt.Running(rctx)
		}
		m.report(e)
	})
}

func (x effects) Unload(op uint64, name string, within time.Duration) {
	m := x.m
	m.spawn(func(ctx context.Context) {
		took, err := timed(ctx, within, func(ctx context.Context) error { return m.rt.Unload(ctx, name) },
			"%s was still loaded after %s", name)
		m.report(evUnloaded{op: op, name: name, err: err, took: took})
	})
}

// timed runs f within a deadline; when the deadline (not the manager's
// stop) ends it, the error says so with what ("%s ... %s": the name and
// the deadline) and wraps ErrTimedOut.
func timed(ctx context.Context, within time.Duration, f func(context.Context) error, what, name string) (time.Duration, error) {
	fctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	t := time.Now()
	err := f(fctx)
	if err != nil && fctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		err = fmt.Errorf(what+": %w", name, within, ErrTimedOut)
	}
	return time.Since(t), err
}

func (x effects) Abandon(name string) {
	m := x.m
	m.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, abandonDeadline)
		defer cancel()
		if err := m.rt.Unload(ctx, name); err != nil {
			m.log.Warn("could not make sure a timed-out load was dropped; the next poll will tell", "model", name, "err", err)
		}
	})
}

func (x effects) Discover() { x.m.discover() }

func (x effects) Show(name string) { x.m.fill(name) }

func (x effects) Reply(w *waiter, r result) {
	x.m.replies = append(x.m.replies, reply{w, r})
}

func (x effects) Emit(e Event) { x.m.emit(e) }

func (x effects) Changed(name string) {
	if name == "" {
		x.m.changed.header()
		return
	}
	x.m.changed.model(name)
}

func (x effects) Used(name string) { x.m.used[name] = struct{}{} }

func (x effects) Persist(p persisted) {
	p.Calibrations = maps.Clone(x.m.cat.calib) // the catalogue's part
	x.m.store.saveState(p)
}

func (x effects) Record(p persisted, id uint64) {
	m := x.m
	p.Calibrations = maps.Clone(m.cat.calib)
	m.store.recordState(p, func(err error) { m.report(evRecorded{id: id, err: err}) })
}
