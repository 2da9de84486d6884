package manager

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// Publishing: the owner keeps a snapshot up to date for everyone else. It
// is redone only when something it shows changed (a version), and then
// costs what changed: the views of the models reported, the chunks of the
// list of views they sit in, and the header. What follows from the room
// alone (each model's largest context that fits) is worked out when a
// snapshot is first read, so a load, or another program taking memory,
// costs the owner no view it did not change.

// changes is what changed since the last snapshot: a version bumped on
// every change a snapshot shows, and the models whose views it touched.
// Whoever changes state reports it where it does: the catalogue, the
// scheduler (Effects.Changed), the owner for the settings, the connection
// and the files. A nil *changes records nothing (a catalogue in a test).
type changes struct {
	version uint64
	models  map[string]struct{}
	// all: every view (the settings, the device); members: models were
	// added or removed, so the order is redone.
	all, members bool
}

func (c *changes) has(name string) bool { _, ok := c.models[name]; return ok }

// header records a change outside the model list.
func (c *changes) header() {
	if c != nil {
		c.version++
	}
}

// model records a change of name's view.
func (c *changes) model(name string) {
	if c == nil {
		return
	}
	c.version++
	if c.models == nil {
		c.models = map[string]struct{}{}
	}
	c.models[name] = struct{}{}
}

// everyModel records a change of every view.
func (c *changes) everyModel() {
	if c != nil {
		c.version++
		c.all = true
	}
}

// membership records models added or removed.
func (c *changes) membership() {
	if c != nil {
		c.version++
		c.members = true
	}
}

// published is what the last snapshot was made at.
type published struct {
	version uint64
	// budget and room are what every view is measured against: whether a
	// model fits (a new budget redoes every view), and the largest context
	// that fits (worked out when the snapshot is read).
	budget, room uint64
}

// pubState is a published snapshot. Its views are shared with the
// snapshots before and after it (a published view never changes), so
// publishing copies what changed; the Snapshot value with its slice of
// views is made once, for the first caller of Snapshot.
type pubState struct {
	head  Snapshot // without Models
	views viewList
	room  uint64 // the room our models have left
	// gen is the catalogue's ranking generation (see rank).
	gen  int
	once sync.Once
	full Snapshot
}

func (p *pubState) snapshot() Snapshot {
	p.once.Do(func() {
		p.full = p.head
		p.full.Models = make([]ModelView, 0, p.views.n)
		for _, c := range p.views.chunks {
			for _, v := range c {
				p.full.Models = append(p.full.Models, v.at(p.room))
			}
		}
	})
	return p.full
}

// model is the view of the model named, without making the snapshot (and
// without its largest context that fits).
func (p *pubState) model(name string) (*ModelView, bool) {
	l := p.views
	lo, hi := 0, l.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if l.at(mid).view.Name < name {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < l.n && l.at(lo).view.Name == name {
		return &l.at(lo).view, true
	}
	return nil, false
}

// pubView is a model's published view but for its largest context that
// fits, and what that follows from: its needs per context and, on the
// card, its own bytes (which its room counts).
type pubView struct {
	view ModelView
	fit  ctxFit
	own  uint64
}

// at is the view with the room the model's largest context must fit.
func (v *pubView) at(room uint64) ModelView {
	out := v.view
	out.MaxFitCtx = maxContext(v.fit, room+v.own)
	return out
}

// viewList is the views by name, in chunks: a snapshot shares with the
// last one every chunk in which no view changed.
type viewList struct {
	chunks [][]*pubView
	n      int
}

const viewChunk = 64

func (l viewList) at(i int) *pubView { return l.chunks[i/viewChunk][i%viewChunk] }

// viewsOf lists the views of models, in order.
func viewsOf(models []*model) viewList {
	l := viewList{n: len(models)}
	for c := range slices.Chunk(models, viewChunk) {
		vs := make([]*pubView, len(c))
		for i, md := range c {
			vs[i] = md.pub
		}
		l.chunks = append(l.chunks, vs)
	}
	return l
}

// edit starts a list from l whose chunks are copied as set changes them.
func (l viewList) edit() *viewEdit {
	return &viewEdit{l: viewList{chunks: slices.Clone(l.chunks), n: l.n}, copied: make([]bool, len(l.chunks))}
}

type viewEdit struct {
	l      viewList
	copied []bool
}

func (e *viewEdit) set(i int, v *pubView) {
	c := i / viewChunk
	if !e.copied[c] {
		e.l.chunks[c], e.copied[c] = slices.Clone(e.l.chunks[c]), true
	}
	e.l.chunks[c][i%viewChunk] = v
}

// publish stores a new snapshot when anything it shows changed since the
// last one: the version tells, and only the views of the models reported
// changed are rebuilt. A model's use (last used, count) shows only when
// withUse, at each poll, so that a request on a loaded model costs no
// snapshot.
func (m *Manager) publish(withUse bool) {
	if withUse {
		for name := range m.used {
			m.changed.model(name)
		}
		clear(m.used)
		m.retryEnded()
	}
	st := m.sched.status()
	room := max(st.room, st.ours) - st.ours
	first := m.snap.Load() == nil
	switch {
	case first || st.budget != m.pub.budget:
		m.changed.everyModel()
	case room != m.pub.room:
		m.changed.header()
	}
	if m.changed.version == m.pub.version && m.cat.gen == m.snap.Load().gen {
		m.verifySnapshot(withUse)
		return
	}
	ch := &m.changed
	m.views = m.rebuild(first || ch.members, st.budget)
	m.snap.Store(&pubState{head: m.header(st), views: m.views, room: room, gen: m.cat.gen})
	m.pub = published{version: ch.version, budget: st.budget, room: room}
	clear(ch.models)
	ch.all, ch.members = false, false
	m.verifySnapshot(withUse)
}

// rebuild is the list of views with those of the models that changed
// made again; members: the models listed changed, so the list is made
// anew (reusing the views that did not change).
func (m *Manager) rebuild(members bool, budget uint64) viewList {
	ch := &m.changed
	if members {
		m.order = slices.SortedFunc(maps.Values(m.cat.models), func(a, b *model) int { return strings.Compare(a.inst.Name, b.inst.Name) })
		for i, md := range m.order {
			md.at = i
		}
	}
	if ch.all || members {
		for _, md := range m.order {
			if ch.all || md.pub == nil || ch.has(md.inst.Name) {
				m.review(md, budget)
			}
		}
		return viewsOf(m.order)
	}
	e := m.views.edit()
	for name := range ch.models {
		if md := m.cat.models[name]; md != nil {
			m.review(md, budget)
			e.set(md.at, md.pub)
		}
	}
	return e.l
}

// review rebuilds md's published view.
func (m *Manager) review(md *model, budget uint64) {
	name := md.inst.Name
	sl := m.sched.record(name)
	v := &pubView{view: viewOf(md, sl, budget, m.sched.holds(name), m.sched.retryAt(name, md.inst.Digest, md.numCtx)), fit: md.fit()}
	m.place(&v.view, md, sl)
	if sl.onCard() {
		v.own = sl.size
	}
	if !v.view.RetryAt.IsZero() {
		m.retrying[name] = v.view.RetryAt
	} else {
		delete(m.retrying, name)
	}
	md.pub = v
}

// retryEnded marks the views of models whose backoff has ended since, so
// their retry time leaves the snapshot at the next poll.
func (m *Manager) retryEnded() {
	now := m.now()
	for name, at := range m.retrying {
		if !now.Before(at) {
			m.changed.model(name)
			delete(m.retrying, name)
		}
	}
}

// header is a snapshot without its models.
func (m *Manager) header(st status) Snapshot {
	c := m.conn
	snap := Snapshot{
		Time: m.now(), VRAM: c.vram, Budget: st.budget, Used: st.ours, Others: c.others(),
		Settings: m.tune.Settings, Tasks: m.names.tasks, Roles: m.names.roles,
		OllamaUp: c.up, Version: c.version, RuntimeErr: c.err, Paused: st.paused,
		Discovered: m.cat.listed, Loading: st.loading, LoadingSince: st.loadingSince,
		Yielded: st.handedBack, YieldedModels: m.sched.yieldedNames(),
		Cards: cardViews(c.vram, c.oursAtRead),
	}
	snap.Accounting, snap.AccountingFrom = m.cat.accounting()
	if c.vram.Measured() {
		snap.Free = c.vram.Free
	} else if c.vram.Total > st.ours {
		snap.Free = c.vram.Total - st.ours
	}
	snap.Settings.Pinned = slices.Clone(m.tune.Pinned)
	return snap
}

// verifySnapshot, in tests (VerifySnapshots), checks that the snapshot
// kept up to date by the version equals one built from scratch now: a
// change nobody reported shows as a difference. Use and retry times show
// only at a poll (withUse), so they are compared only then.
func (m *Manager) verifySnapshot(withUse bool) {
	if !m.verify.Load() || m.verifyErr.Load() != nil {
		return
	}
	st := m.sched.status()
	room := max(st.room, st.ours) - st.ours
	fresh := m.header(st)
	fresh.Tasks, fresh.Roles = m.tune.Tables.TaskNames(), m.tune.Tables.RoleNames()
	fresh.Models = []ModelView{}
	for _, md := range slices.SortedFunc(maps.Values(m.cat.models), func(a, b *model) int { return strings.Compare(a.inst.Name, b.inst.Name) }) {
		name := md.inst.Name
		sl := m.sched.record(name)
		r := room
		if sl.onCard() {
			r += sl.size
		}
		v := viewOf(md, sl, st.budget, m.sched.holds(name), m.sched.retryAt(name, md.inst.Digest, md.numCtx))
		m.place(&v, md, sl)
		v.MaxFitCtx = maxContext(md.fit(), r)
		fresh.Models = append(fresh.Models, v)
	}
	got := m.snap.Load().snapshot()
	got.Models = slices.Clone(got.Models)
	got.Time, fresh.Time = time.Time{}, time.Time{}
	if !withUse {
		for _, ms := range [][]ModelView{got.Models, fresh.Models} {
			for i := range ms {
				ms[i].LastUsed, ms[i].Uses, ms[i].RetryAt = time.Time{}, 0, time.Time{}
			}
		}
	}
	var err error
	switch gm, fm := got.Models, fresh.Models; {
	case len(gm) != len(fm):
		err = fmt.Errorf("%d models published, %d now", len(gm), len(fm))
	default:
		for i := range gm {
			if !reflect.DeepEqual(gm[i], fm[i]) {
				err = fmt.Errorf("model %s published as\n%+v\nis now\n%+v", fm[i].Name, gm[i], fm[i])
				break
			}
		}
	}
	got.Models, fresh.Models = nil, nil
	if err == nil && !reflect.DeepEqual(got, fresh) {
		err = fmt.Errorf("published\n%+v\nnow\n%+v", got, fresh)
	}
	if err != nil {
		m.verifyErr.Store(&err)
	}
}

// place says where Ollama would put a model not on the card yet, on a
// machine with several cards (placement).
func (m *Manager) place(v *ModelView, md *model, sl slot) {
	if !sl.onCard() {
		v.Card, v.CardCount = placement(md.need, m.conn.vram.Cards, m.tune.SafetyMargin)
	}
}
