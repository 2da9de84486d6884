package manager

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/predict"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// The owner goroutine's work: the events it is sent, what each one does,
// and what follows every one (a snapshot of what changed, then the
// answers to the callers it settled).

// step is the owner's work for one event: handle it, then publish what it
// changed and answer the callers it settled.
func (m *Manager) step(ev any) {
	m.handle(ev)
	if _, read := ev.(evRead); read {
		m.flushReplies() // an agent's ranking costs no snapshot
		return
	}
	_, poll := ev.(evPolled)
	m.settled(poll)
}

// settled follows every event: what derives from the card is brought in
// step, a snapshot shows what changed (a model's use at a poll), and then
// the callers are answered.
func (m *Manager) settled(poll bool) {
	m.settle()
	m.publish(poll)
	m.flushReplies()
	m.learn()
}

// The owner's events. Callers send requests; workers report outcomes.
type (
	evLoad struct {
		w                  *waiter
		name, reason, task string
		numCtx             int
	}
	evUnload struct {
		w            *waiter
		name, reason string
	}
	evCancel  struct{ w *waiter }
	evYield   struct{ w *waiter }
	evRestore struct{ w *waiter }
	evRelease struct{ id uint64 }
	// evRecorded: the state file asked for by Record is written (err nil)
	// or could not be.
	evRecorded struct {
		id  uint64
		err error
	}
	evRefreshed struct {
		op      uint64
		ps      []serving.Running
		err     error
		vram    card.VRAM
		vramErr error
	}
	evLoaded struct {
		op   uint64
		ps   []serving.Running
		err  error
		took time.Duration
	}
	evUnloaded struct {
		op   uint64
		name string
		err  error
		took time.Duration
	}
	evPolled struct {
		// since is the scheduler's transition count when the poll began.
		since   uint64
		ps      []serving.Running
		err     error
		version string
		vram    card.VRAM
		vramErr error
	}
	evListed struct {
		results []shown
		err     error
	}
	evRefresh struct{ list, poll chan error }
	evShown   struct{ shown }
	evApply   struct {
		f     func(*Settings)
		reply chan error
	}
	evPause struct {
		paused bool
		reply  chan error
	}
	evPin struct {
		name   string
		pinned bool
		reply  chan error
	}
	// evRead runs f on the owner to read state (rankings' inputs); f
	// changes nothing a snapshot shows, so no snapshot follows it.
	evRead struct{ f func() }
)

// handle is the owner loop's switch: each event goes to what owns its part
// of the state.
func (m *Manager) handle(ev any) {
	s := m.sched
	switch e := ev.(type) {
	case evLoad:
		m.busy()
		m.warm.seen = append(m.warm.seen, predict.Obs{Kind: predict.Request, Model: m.canonicalName(e.name), Task: e.task})
		s.OnLoad(e.w, e.name, e.reason, e.numCtx)
	case evUnload:
		m.busy()
		s.OnUnload(e.w, e.name, e.reason)
	case evPrefetched:
		m.prefetched(e)
	case evResidency:
		m.residency(e)
	case evCancel:
		m.cancel(e.w)
	case evRelease:
		s.OnRelease(e.id)
	case evRecorded:
		s.OnRecorded(e.id, e.err)
	case evYield:
		m.busy()
		s.OnYield(e.w)
	case evRestore:
		m.busy()
		s.OnRestore(e.w)
	case evRefreshed:
		m.readCard(e.vram, e.vramErr)
		m.serverAnswered(e.err)
		s.OnRefreshed(e.op, e.ps, e.err)
	case evLoaded:
		s.OnLoaded(e.op, e.ps, e.err, e.took)
	case evUnloaded:
		s.OnUnloaded(e.op, e.name, e.err, e.took)
	case evPolled:
		m.polled(e)
	case evListed:
		m.listed(e)
	case evShown:
		m.shown(e)
	case evRefresh:
		m.refresh(e)
	case evApply:
		m.apply(e)
	case evPause:
		if e.paused != s.paused {
			m.emit(Event{Kind: EventSettings, Reason: cond(e.paused, "paused", "resumed")})
		}
		s.OnPaused(e.paused)
		m.wake(e.reply, nil)
	case evPin:
		m.pin(e)
	case evRead:
		e.f()
	default:
		m.log.Error("manager: unknown event", "type", fmt.Sprintf("%T", ev))
	}
}

// cancel drops a caller that gave up; one answered already gives back the
// lease it got.
func (m *Manager) cancel(w *waiter) {
	select {
	case r := <-w.reply:
		if r.lease != 0 {
			m.sched.OnRelease(r.lease)
		}
	default:
		m.sched.OnCancel(w)
	}
}

// refresh lists the models and polls now, for a caller that waits.
func (m *Manager) refresh(e evRefresh) {
	m.listWaiters = append(m.listWaiters, e.list)
	m.pollWaiters = append(m.pollWaiters, e.poll)
	m.discover()
	m.poll()
}

// pin pins a model or unpins it.
func (m *Manager) pin(e evPin) {
	md := m.cat.lookup(e.name)
	if md == nil {
		m.wake(e.reply, m.cat.unknown(e.name))
		return
	}
	// A new slice: published snapshots hold the old one.
	m.tune.Pinned = slices.DeleteFunc(slices.Clone(m.tune.Pinned), func(n string) bool { return n == md.inst.Name })
	if e.pinned {
		m.tune.Pinned = append(m.tune.Pinned, md.inst.Name)
	}
	if md.pinned != e.pinned {
		m.emit(Event{Kind: EventSettings, Model: md.inst.Name, Reason: cond(e.pinned, "pinned", "unpinned")})
	}
	md.pinned = e.pinned
	m.changed.model(md.inst.Name)
	m.changed.header() // the settings' pinned list
	m.wake(e.reply, nil)
}

// cond is yes when b holds, else no.
func cond(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// canonicalName is the catalogue's name for name (tag added), or name.
func (m *Manager) canonicalName(name string) string {
	if md := m.cat.lookup(name); md != nil {
		return md.inst.Name
	}
	return name
}

// settle keeps what derives from the card in step: estimates assume the
// device the models run on. Once the models are listed and the card read,
// it starts the warm start.
func (m *Manager) settle() (reevaluated bool) {
	d, cards := m.conn.device(m.sched.onGPU()), cardTotals(m.conn.vram)
	if d != m.cat.dev || !slices.Equal(cards, m.cat.cards) || m.cat.restale || m.cat.inferSaved() {
		m.cat.dev, m.cat.cards, m.cat.restale = d, cards, false
		m.cat.evaluateAll(m.tune.Settings) // every view changes
		reevaluated = true
	}
	if m.warmStart != "" && m.cat.listed && m.conn.known && m.conn.up && !m.polling {
		task := m.warmStart
		m.warmStart = ""
		if len(m.sched.activeNames()) > 0 {
			return reevaluated // something is loaded: the first request will not wait
		}
		m.spawn(func(ctx context.Context) {
			c, err := m.bestModel(ctx, task, "", "warm start: the best model for "+task)
			if err != nil {
				m.log.Warn("warm start loaded nothing", "task", task, "err", err)
				return
			}
			m.log.Info("warm start", "task", task, "model", c.Model)
		})
	}
	return reevaluated
}

func (m *Manager) apply(e evApply) {
	next := m.tune.Settings
	next.Pinned = slices.Clone(next.Pinned)
	e.f(&next)
	next, p, err := next.withDefaults()
	if err != nil {
		m.wake(e.reply, err)
		return
	}
	old := m.tune.Settings
	m.tune = tuning{Settings: next, policy: p}
	m.changed.header() // Snapshot().Settings: every field, whichever changed
	if !reflect.DeepEqual(old.Tables, next.Tables) {
		m.names.tasks, m.names.roles = next.Tables.TaskNames(), next.Tables.RoleNames()
		m.cat.gen++ // rankings follow the tables
	}
	// What a change costs is what it changes: the models it re-estimates,
	// and the loaded ones the scheduler looks at again.
	was := map[string]int{}
	for _, name := range m.sched.activeNames() {
		if md := m.cat.models[name]; md != nil {
			was[name] = md.numCtx
		}
	}
	m.cat.reevaluate(old, next)
	m.sched.OnSettings(m.tune, was)
	if !reflect.DeepEqual(old, next) {
		m.emit(Event{Kind: EventSettings, Reason: "settings changed"})
	}
	m.wake(e.reply, nil)
}

// report is how workers hand results to the owner; it gives up when the
// manager is stopping.
func (m *Manager) report(ev any) {
	select {
	case m.events <- ev:
	case <-m.stopping:
	}
}

type (
	reply struct {
		w *waiter
		r result
	}
	wake struct {
		ch  chan error
		err error
	}
)

// wake answers a caller waiting on ch after the next publish.
func (m *Manager) wake(ch chan error, err error) {
	m.wakes = append(m.wakes, wake{ch, err})
}

func (m *Manager) failRefresh(err error) {
	for _, ch := range append(m.listWaiters, m.pollWaiters...) {
		m.wake(ch, err)
	}
	m.listWaiters, m.pollWaiters = nil, nil
}

// flushReplies sends the events of the last step and answers the
// callers whose calls it settled, after the publish that shows them, so a
// subscriber or a caller that reads Snapshot then sees the state they
// report; the events first, so History has them when a call returns.
func (m *Manager) flushReplies() {
	for _, e := range m.outbox {
		m.hub.publish(e)
	}
	clear(m.outbox)
	m.outbox = m.outbox[:0]
	for _, r := range m.replies {
		r.w.reply <- r.r
	}
	for _, w := range m.wakes {
		w.ch <- w.err
	}
	clear(m.replies) // let the results go
	m.replies, m.wakes = m.replies[:0], m.wakes[:0]
}
