package manager

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/predict"
	"github.com/vramkeeper/vramkeeper/manager/prefetch"
)

// While nothing happens, the manager reads the files of the model it
// expects to be asked for next into the page cache, so that the swap that
// follows reads RAM instead of the disk. It predicts from what it sees
// (manager/predict: requests, loads, evictions), never reads while an op
// runs or is queued, and stops the moment a request arrives.

// prefetchIdle is how long the manager must have been quiet before it
// prefetches: longer than the gap between an agent's back-to-back calls.
const prefetchIdle = 2 * time.Second

// Prefetcher reads a file into the page cache; prefetch.Warmer is one.
type Prefetcher interface {
	Warm(ctx context.Context, path string) (prefetch.Result, error)
}

// warming is the owner's prefetch state.
type warming struct {
	predict  *predict.Predictor
	seen     []predict.Obs // not yet learnt (see learn)
	use      Prefetcher    // nil: a prefetch.Warmer with the settings' margin
	cancel   context.CancelFunc
	running  uint64 // the prefetch whose cancel is held (0: none)
	ids      uint64 // the last prefetch's
	lastBusy time.Time
}

type evPrefetched struct {
	id    uint64
	model string
	res   []prefetch.Result
	err   error
}

type evResidency struct{ warm map[string]float64 }

// busy records activity and stops a prefetch at once.
func (m *Manager) busy() {
	m.warm.lastBusy = m.now()
	if m.warm.cancel != nil {
		m.warm.cancel()
		m.warm.cancel, m.warm.running = nil, 0
	}
}

// observe tells the predictor what happened; events carry loads and
// evictions, requests are observed where they arrive.
func (m *Manager) observe(e Event) {
	switch e.Kind {
	case EventLoaded, EventRestored:
		m.warm.seen = append(m.warm.seen, predict.Obs{Kind: predict.Load, Model: e.Model})
	case EventEvicted, EventYielded:
		m.warm.seen = append(m.warm.seen, predict.Obs{Kind: predict.Evict, Model: e.Model})
	}
}

// learn hands the predictor what was seen, in order. The owner does it
// after the callers have their answers, so a request does not wait for
// the predictor; it is done before every prediction.
func (m *Manager) learn() {
	for _, o := range m.warm.seen {
		m.warm.predict.Observe(o)
	}
	clear(m.warm.seen)
	m.warm.seen = m.warm.seen[:0]
}

// maybePrefetch starts reading the likeliest next model's files when the
// manager has been idle long enough.
func (m *Manager) maybePrefetch() {
	if m.tune.NoPrefetch || m.warm.cancel != nil || m.spawn == nil || m.now().Sub(m.warm.lastBusy) < prefetchIdle {
		return
	}
	if st := m.sched.status(); !st.idle || st.handedBack {
		return
	}
	m.learn()
	for _, g := range m.warm.predict.Next(2, predict.Query{Exclude: m.sched.activeNames()}) {
		md := m.cat.models[g.Model]
		if md == nil || len(md.det.Files) == 0 || md.remoteFiles || md.warmth >= 0.99 {
			continue
		}
		ctx, cancel := context.WithCancel(m.workCtx)
		m.warm.ids++
		id := m.warm.ids
		m.warm.cancel, m.warm.running = cancel, id
		w := m.warm.use
		if w == nil {
			w = prefetch.New(prefetch.Options{Margin: m.tune.PrefetchMargin})
		}
		name, files := md.inst.Name, md.det.Files
		m.spawn(func(context.Context) {
			defer cancel()
			e := evPrefetched{id: id, model: name}
			for _, f := range files {
				r, err := w.Warm(ctx, f)
				e.res = append(e.res, r)
				if err != nil {
					e.err = err
					break
				}
			}
			m.report(e)
		})
		return
	}
}

func (m *Manager) prefetched(e evPrefetched) {
	if m.warm.running == e.id {
		m.warm.cancel, m.warm.running = nil, 0
	}
	md := m.cat.models[e.model]
	if md == nil {
		return
	}
	switch {
	case errors.Is(e.err, prefetch.ErrNotLocal), errors.Is(e.err, prefetch.ErrUnsupported):
		md.remoteFiles = true // not ours to read: never again
		m.log.Info("not prefetching: the model's files are not readable here", "model", e.model, "err", e.err)
	case e.err != nil && !errors.Is(e.err, context.Canceled):
		m.log.Warn("prefetch failed", "model", e.model, "err", e.err)
	}
	md.warmth = residentShare(e.res)
	m.changed.model(e.model)
	var read int64
	for _, r := range e.res {
		read += r.Read
	}
	m.log.Info("prefetched", "model", e.model, "read", fmtBytes(uint64(read)), "warm", md.warmth)
}

// residentShare is the cached part of files, weighted by their sizes.
func residentShare(res []prefetch.Result) float64 {
	var size, cached float64
	for _, r := range res {
		size += float64(r.Size)
		cached += r.Resident * float64(r.Size)
	}
	if size == 0 {
		return 0
	}
	return cached / size
}

// scanResidency reads how much of each model's files is cached now, away
// from the owner (it asks the kernel about every file).
func (m *Manager) scanResidency() {
	if m.tune.NoPrefetch || m.spawn == nil {
		return
	}
	files := map[string][]string{}
	for n, md := range m.cat.models {
		if len(md.det.Files) > 0 && !md.remoteFiles {
			files[n] = md.det.Files
		}
	}
	if len(files) == 0 {
		return
	}
	m.spawn(func(ctx context.Context) {
		out := map[string]float64{}
		for n, fs := range files {
			var res []prefetch.Result
			for _, f := range fs {
				if ctx.Err() != nil {
					return
				}
				share, err := prefetch.Resident(f)
				if err != nil {
					break
				}
				if fi, err := statSize(f); err == nil {
					res = append(res, prefetch.Result{Size: fi, Resident: share})
				}
			}
			out[n] = residentShare(res)
		}
		m.report(evResidency{out})
	})
}

func statSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (m *Manager) residency(e evResidency) {
	for n, w := range e.warm {
		if md := m.cat.models[n]; md != nil {
			if md.warmth != w {
				md.warmth = w
				m.changed.model(n)
			}
		}
	}
}
