package manager

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/estimate"
	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// These tests drive the scheduler one event at a time against a recorder of
// its effects and a clock that moves only when told: no goroutines, no
// sleeps. Each step plays the part of the server by answering the effect
// the scheduler asked for.

const gib = 1 << 30

type loadCall struct {
	op     uint64
	req    serving.LoadRequest
	within time.Duration
}

type unloadCall struct {
	op     uint64
	name   string
	within time.Duration
}

type replied struct {
	w *waiter
	r result
}

// recorder is the scheduler's Effects, written down.
type recorder struct {
	reads     []uint64
	loads     []loadCall
	unloads   []unloadCall
	abandoned []string
	discovers int
	shows     []string
	replies   []replied
	events    []Event
	persists  int
	saved     persisted // the last Persist's or Record's
	records   []uint64  // Record's ids not yet answered
	changed   map[string]int
	used      map[string]int
}

func (r *recorder) ReadServer(op uint64) { r.reads = append(r.reads, op) }
func (r *recorder) Load(op uint64, req serving.LoadRequest, within time.Duration) {
	r.loads = append(r.loads, loadCall{op, req, within})
}
func (r *recorder) Unload(op uint64, name string, within time.Duration) {
	r.unloads = append(r.unloads, unloadCall{op, name, within})
}
func (r *recorder) Abandon(name string)       { r.abandoned = append(r.abandoned, name) }
func (r *recorder) Discover()                 { r.discovers++ }
func (r *recorder) Show(name string)          { r.shows = append(r.shows, name) }
func (r *recorder) Reply(w *waiter, x result) { r.replies = append(r.replies, replied{w, x}) }
func (r *recorder) Emit(e Event)              { r.events = append(r.events, e) }
func (r *recorder) Persist(p persisted)       { r.persists++; r.saved = p }
func (r *recorder) Record(p persisted, id uint64) {
	r.persists++
	r.saved = p
	r.records = append(r.records, id)
}
func (r *recorder) Changed(name string) { r.changed[name]++ }
func (r *recorder) Used(name string)    { r.used[name]++ }

func (r *recorder) kinds() []EventKind {
	var out []EventKind
	for _, e := range r.events {
		out = append(out, e.Kind)
	}
	return out
}

// rig is a scheduler over a catalogue of made-up models on an 8 GiB card
// (budget 7 GiB, two models at most), with the server's loaded set kept
// by the test.
type rig struct {
	t      *testing.T
	s      *scheduler
	fx     *recorder
	cat    catalogue
	conn   connection
	tune   tuning
	clock  time.Time
	onCard map[string]uint64 // what the server holds
}

func newRig(t *testing.T, set Settings, sizes map[string]uint64) *rig {
	t.Helper()
	set, p, err := set.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, fx: &recorder{changed: map[string]int{}, used: map[string]int{}}, tune: tuning{Settings: set, policy: p},
		clock: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), onCard: map[string]uint64{}}
	r.cat = newCatalogue(nil, nil)
	r.cat.listed = true
	r.conn = connection{vram: card.VRAM{Source: card.SourceEstimated, Total: 8 * gib}, up: true, known: true}
	for name, size := range sizes {
		md := &model{inst: serving.Installed{Name: name, Digest: "sha256:" + name}, hasDetails: true, detailed: true,
			det: serving.Details{Name: name, Capabilities: []string{"completion"}}}
		md.numCtx = 4096
		md.est, md.need = estimate.Breakdown{Total: size}, size
		r.cat.models[name] = md
	}
	r.s = newScheduler(&r.cat, &r.conn, r.tune, r.fx, func() time.Time { return r.clock }, slog.New(slog.NewTextHandler(io.Discard, nil)), persisted{})
	return r
}

// ps is the server's /api/ps now.
func (r *rig) ps() []serving.Running {
	var out []serving.Running
	for n, b := range r.onCard {
		x := serving.Running{Name: n, SizeBytes: b, ContextLength: 4096}
		if r.conn.vram.Source == card.SourceNVML {
			x.VRAMBytes = b // all of it on the GPU
		}
		out = append(out, x)
	}
	return out
}

// poll hands the scheduler a poll of the server begun now.
func (r *rig) poll() { r.s.OnPoll(r.ps(), r.s.changes) }

func (r *rig) load(name string, lease bool) *waiter {
	w := newWaiter(lease)
	r.s.OnLoad(w, name, "test", 0)
	return w
}

// refresh answers the last server read the scheduler asked for.
func (r *rig) refresh() {
	r.t.Helper()
	if len(r.fx.reads) == 0 {
		r.t.Fatal("the scheduler asked for no server read")
	}
	op := r.fx.reads[len(r.fx.reads)-1]
	r.fx.reads = r.fx.reads[:0]
	r.s.OnRefreshed(op, r.ps(), nil)
}

// recorded answers the oldest Record: the state file is on disk.
func (r *rig) recorded() {
	r.t.Helper()
	if len(r.fx.records) == 0 {
		r.t.Fatal("the scheduler recorded nothing")
	}
	id := r.fx.records[0]
	r.fx.records = r.fx.records[1:]
	r.s.OnRecorded(id, nil)
}

// unloaded answers the oldest unload the scheduler asked for.
func (r *rig) unloaded(err error) {
	r.t.Helper()
	if len(r.fx.unloads) == 0 {
		r.t.Fatal("the scheduler asked for no unload")
	}
	u := r.fx.unloads[0]
	r.fx.unloads = r.fx.unloads[1:]
	if err == nil {
		delete(r.onCard, u.name)
	}
	r.s.OnUnloaded(u.op, u.name, err, time.Second)
}

// loaded answers the oldest load the scheduler asked for.
func (r *rig) loaded(err error) loadCall {
	r.t.Helper()
	if len(r.fx.loads) == 0 {
		r.t.Fatal("the scheduler asked for no load")
	}
	l := r.fx.loads[0]
	r.fx.loads = r.fx.loads[1:]
	if err == nil {
		r.onCard[l.req.Name] = r.cat.models[l.req.Name].est.Total
	}
	r.s.OnLoaded(l.op, r.ps(), err, time.Second)
	return l
}

// loadThrough runs a whole load of name that needs no eviction.
func (r *rig) loadThrough(name string) result {
	r.t.Helper()
	w := r.load(name, false)
	r.refresh()
	r.loaded(nil)
	return r.reply(w)
}

// reply returns w's answer; it fails the test when there is none.
func (r *rig) reply(w *waiter) result {
	r.t.Helper()
	for _, x := range r.fx.replies {
		if x.w == w {
			return x.r
		}
	}
	r.t.Fatalf("no reply yet")
	return result{}
}

func (r *rig) answered(w *waiter) bool {
	for _, x := range r.fx.replies {
		if x.w == w {
			return true
		}
	}
	return false
}

func (r *rig) state(name string) State { return r.s.record(name).state }

func (r *rig) advance(d time.Duration) { r.clock = r.clock.Add(d) }

func TestLoadReadsServerFirstAndRepliesAfterLoad(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib})
	w := r.load("a", false)
	if len(r.fx.reads) != 1 || len(r.fx.loads) != 0 {
		t.Fatalf("before loading, the server must be read: reads %v loads %v", r.fx.reads, r.fx.loads)
	}
	if r.answered(w) {
		t.Fatal("answered before the load")
	}
	r.refresh()
	if r.state("a") != Loading {
		t.Fatalf("state %s, want loading", r.state("a"))
	}
	l := r.loaded(nil)
	if l.within != loadDeadline(2*gib, 0) {
		t.Errorf("load deadline %s, want %s", l.within, loadDeadline(2*gib, 0))
	}
	if res := r.reply(w); res.err != nil || res.already {
		t.Fatalf("reply %+v", res)
	}
	if r.state("a") != Loaded || r.fx.persists == 0 {
		t.Fatalf("state %s, persists %d", r.state("a"), r.fx.persists)
	}
	// A second request is a hit: no server read, no load.
	w2 := r.load("a", false)
	if res := r.reply(w2); !res.already || len(r.fx.reads) != 0 {
		t.Fatalf("hit: %+v, reads %v", res, r.fx.reads)
	}
}

// A request that finds its model loaded changes nothing a snapshot shows
// but that model's use (shown at the next poll) and, with a lease, its
// holds: it costs no snapshot, or one model's view. It asks for nothing but
// the reply.
func TestHitChangesOnlyItsModel(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib, "b": 2 * gib})
	r.loadThrough("a")
	for _, tc := range []struct {
		name    string
		lease   bool
		holds   int
		changed map[string]int
	}{{"plain", false, 0, map[string]int{}}, {"with a lease", true, 1, map[string]int{"a": 1}}} {
		before := *r.fx
		changed, used := maps.Clone(r.fx.changed), maps.Clone(r.fx.used)
		w := newWaiter(tc.lease)
		r.s.OnLoad(w, "a", "test", 0)
		if res := r.reply(w); !res.already || res.err != nil {
			t.Fatalf("%s: reply %+v", tc.name, res)
		}
		if got := r.s.holds("a"); got != tc.holds {
			t.Errorf("%s: holds %d, want %d", tc.name, got, tc.holds)
		}
		if d := delta(changed, r.fx.changed); !maps.Equal(d, tc.changed) {
			t.Errorf("%s: a hit reported changes %v, want %v", tc.name, d, tc.changed)
		}
		if d := delta(used, r.fx.used); !maps.Equal(d, map[string]int{"a": 1}) {
			t.Errorf("%s: a hit reported uses %v, want a's", tc.name, d)
		}
		if len(r.fx.reads) != len(before.reads) || len(r.fx.loads) != len(before.loads) ||
			len(r.fx.unloads) != len(before.unloads) || len(r.fx.events) != len(before.events) ||
			r.fx.persists != before.persists || r.fx.discovers != before.discovers || len(r.fx.shows) != len(before.shows) {
			t.Errorf("%s: a hit asked for more than its reply: %+v, before %+v", tc.name, *r.fx, before)
		}
	}
	// A request that must load reports the load it starts.
	changed := maps.Clone(r.fx.changed)
	r.load("b", false)
	r.refresh()
	if d := delta(changed, r.fx.changed); d["b"] == 0 || d[""] == 0 {
		t.Errorf("a load of b reported changes %v, want b's and the scheduler's (the load that runs)", d)
	}
}

// delta is what counts grew from before to after.
func delta(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range after {
		if n > before[k] {
			out[k] = n - before[k]
		}
	}
	return out
}

func TestConcurrentRequestsJoinOneLoad(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib})
	ws := []*waiter{r.load("a", false), r.load("a", true), r.load("a", false)}
	r.refresh()
	r.loaded(nil)
	if len(r.fx.loads) != 0 {
		t.Fatalf("%d extra loads", len(r.fx.loads))
	}
	for i, w := range ws {
		if res := r.reply(w); res.err != nil || (res.lease != 0) != w.lease {
			t.Errorf("waiter %d: %+v", i, res)
		}
	}
}

func TestEvictsLeastRecentlyUsedAtTheModelLimit(t *testing.T) {
	r := newRig(t, Settings{Policy: "lru"}, map[string]uint64{"a": 2 * gib, "b": 2 * gib, "c": 2 * gib})
	r.loadThrough("a")
	r.advance(time.Minute)
	r.loadThrough("b")
	r.advance(time.Minute)
	w := r.load("c", false)
	r.refresh()
	if len(r.fx.unloads) != 1 || r.fx.unloads[0].name != "a" {
		t.Fatalf("unloads %v, want a (least recently used)", r.fx.unloads)
	}
	if r.fx.unloads[0].within != unloadDeadline {
		t.Errorf("unload deadline %s", r.fx.unloads[0].within)
	}
	r.unloaded(nil)
	r.loaded(nil)
	if res := r.reply(w); res.err != nil || !slices.Equal(res.evicted, []string{"a"}) {
		t.Fatalf("reply %+v", res)
	}
	if !slices.Contains(r.fx.kinds(), EventEvicted) {
		t.Errorf("no eviction event: %v", r.fx.kinds())
	}
}

// A load that does not finish within its deadline fails with an error that
// names the model and the time, the scheduler asks the server to drop it,
// and the queue moves on to the next request.
func TestLoadDeadlineFailsAndQueueMovesOn(t *testing.T) {
	r := newRig(t, Settings{LoadTimeout: 20 * time.Second}, map[string]uint64{"hung": 2 * gib, "b": 2 * gib})
	w := r.load("hung", false)
	r.refresh()
	wb := r.load("b", false) // queued behind the hung load
	if len(r.fx.reads) != 0 {
		t.Fatal("a second op started while one runs")
	}
	l := r.fx.loads[0]
	if l.within != 20*time.Second {
		t.Fatalf("deadline %s, want the configured 20s", l.within)
	}
	timeout := fmt.Errorf("hung did not load within %s (load_timeout): %w", l.within, ErrTimedOut)
	r.loaded(timeout)
	res := r.reply(w)
	if !errors.Is(res.err, ErrTimedOut) || !errors.Is(res.err, ErrLoadFailed) || !strings.Contains(res.err.Error(), "hung") {
		t.Fatalf("error %v", res.err)
	}
	if !slices.Equal(r.fx.abandoned, []string{"hung"}) {
		t.Errorf("abandoned %v, want the timed-out load dropped", r.fx.abandoned)
	}
	if r.state("hung") != Failed {
		t.Errorf("state %s", r.state("hung"))
	}
	r.refresh() // b's turn
	r.loaded(nil)
	if res := r.reply(wb); res.err != nil {
		t.Fatalf("next request after a timeout: %v", res.err)
	}
}

func TestLoadDeadlineGrowsWithBytes(t *testing.T) {
	for _, tc := range []struct {
		need       uint64
		configured time.Duration
		want       time.Duration
	}{
		{1 * gib, 0, 2 * time.Minute},           // small: the floor
		{8e9, 0, time.Minute + 320*time.Second}, // 8 GB at 25 MB/s
		{8e9, 45 * time.Second, 45 * time.Second},
	} {
		if got := loadDeadline(tc.need, tc.configured); got != tc.want {
			t.Errorf("loadDeadline(%d, %s) = %s, want %s", tc.need, tc.configured, got, tc.want)
		}
	}
}

// A model whose load keeps failing is asked for ten times in a row: the
// first try evicts what it needs, the others fail at once without touching
// the card, the evicted model is put back, and after the backoff the load is
// tried again, with a longer backoff if it fails again.
func TestFailedLoadBacksOffAndRestoresVictims(t *testing.T) {
	r := newRig(t, Settings{MaxLoaded: 1}, map[string]uint64{"keep": 2 * gib, "broken": 2 * gib})
	r.loadThrough("keep")
	r.advance(time.Minute)
	w := r.load("broken", false)
	r.refresh()
	r.unloaded(nil) // keep makes room
	r.loaded(errors.New("llama runner process has terminated: out of memory"))
	if res := r.reply(w); !errors.Is(res.err, ErrLoadFailed) || !slices.Equal(res.evicted, []string{"keep"}) {
		t.Fatalf("first try: %+v", res)
	}
	// keep was used a minute ago: it is put back, without evicting anything.
	r.refresh()
	if len(r.fx.loads) != 1 || r.fx.loads[0].req.Name != "keep" {
		t.Fatalf("loads %v, want keep put back", r.fx.loads)
	}
	r.loaded(nil)
	if r.state("keep") != Loaded {
		t.Fatalf("keep %s", r.state("keep"))
	}
	for i := range 9 {
		w := r.load("broken", false)
		res := r.reply(w)
		if !errors.Is(res.err, ErrLoadFailed) || !strings.Contains(res.err.Error(), "out of memory") {
			t.Fatalf("retry %d: %v", i, res.err)
		}
	}
	if len(r.fx.unloads) != 0 || len(r.fx.reads) != 0 {
		t.Fatalf("retries within the backoff touched the card: unloads %v reads %v", r.fx.unloads, r.fx.reads)
	}
	r.advance(backoffBase)
	w = r.load("broken", false)
	r.refresh()
	r.unloaded(nil)
	r.loaded(errors.New("still broken"))
	if res := r.reply(w); res.err == nil {
		t.Fatal("second try succeeded")
	}
	if f := r.s.failed[loadKeyOf("broken", "sha256:broken", 4096)]; f.Until.Sub(f.At) != 2*backoffBase {
		t.Errorf("second backoff %s, want %s", f.Until.Sub(f.At), 2*backoffBase)
	}
}

// A model evicted long ago is not put back after a failure: only what was
// in use lately.
func TestStaleVictimNotRestored(t *testing.T) {
	r := newRig(t, Settings{MaxLoaded: 1}, map[string]uint64{"old": 2 * gib, "broken": 2 * gib})
	r.loadThrough("old")
	r.advance(time.Hour)
	r.load("broken", false)
	r.refresh()
	r.unloaded(nil)
	r.loaded(errors.New("boom"))
	if len(r.fx.reads) != 0 || len(r.fx.loads) != 0 {
		t.Fatalf("a model idle for an hour was put back: reads %v loads %v", r.fx.reads, r.fx.loads)
	}
}

// A request's lease survives a poll that misses the model; a late release
// of an old lease never cancels a newer request's hold; releasing twice
// does nothing.
func TestLeasesAreExactAcrossPolls(t *testing.T) {
	r := newRig(t, Settings{MaxLoaded: 1}, map[string]uint64{"x": 2 * gib, "y": 2 * gib})
	w1 := r.load("x", true)
	r.refresh()
	r.loaded(nil)
	old := r.reply(w1).lease
	// Ollama drops x on its own (ollama stop): the old request's lease now
	// protects nothing, and the history says who unloaded it.
	delete(r.onCard, "x")
	r.poll()
	if r.state("x") != Idle || !slices.Contains(r.fx.kinds(), EventUnloadedByOllama) {
		t.Fatalf("state %s, events %v", r.state("x"), r.fx.kinds())
	}
	// A new request loads x again and holds it.
	w2 := r.load("x", true)
	r.refresh()
	r.loaded(nil)
	newer := r.reply(w2).lease
	r.s.OnRelease(old)
	r.s.OnRelease(old)
	// y needs x's slot: x is held by the newer request, so y waits.
	wy := r.load("y", false)
	r.refresh()
	if len(r.fx.unloads) != 0 || r.answered(wy) {
		t.Fatalf("a held model was chosen as a victim: unloads %v", r.fx.unloads)
	}
	r.s.OnRelease(newer)
	r.refresh()
	if len(r.fx.unloads) != 1 || r.fx.unloads[0].name != "x" {
		t.Fatalf("after the release: unloads %v", r.fx.unloads)
	}
}

func TestBusyGraceEndsAHold(t *testing.T) {
	r := newRig(t, Settings{MaxLoaded: 1, BusyGrace: time.Minute}, map[string]uint64{"x": 2 * gib, "y": 2 * gib})
	w := r.load("x", true)
	r.refresh()
	r.loaded(nil)
	_ = r.reply(w)
	r.load("y", false)
	r.refresh()
	if len(r.fx.unloads) != 0 {
		t.Fatal("evicted within the grace")
	}
	r.advance(time.Minute)
	r.s.OnTick()
	r.refresh()
	if len(r.fx.unloads) != 1 {
		t.Fatal("the grace ended but nothing was evicted")
	}
}

// A caller that gives up leaves the queue; an op nobody waits for is not run.
func TestCancelledRequestIsDropped(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib, "b": 2 * gib})
	r.load("a", false)
	wb := r.load("b", false)
	r.s.OnCancel(wb)
	r.refresh()
	r.loaded(nil)
	if len(r.fx.reads) != 0 {
		t.Fatalf("the cancelled request's op still runs")
	}
}

func TestStopAnswersEveryCaller(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib, "b": 2 * gib})
	wa := r.load("a", false)
	r.refresh()
	wb := r.load("b", false)
	r.s.OnStop(ErrStopped)
	for _, w := range []*waiter{wa, wb} {
		if res := r.reply(w); !errors.Is(res.err, ErrStopped) {
			t.Fatalf("reply %+v", res)
		}
	}
	// A late report of the running load changes nothing.
	r.loaded(nil)
}

// Models another client loaded count; when they push the card over the
// budget, the least useful unpinned ones are evicted, never the last one.
func TestShedsWhenOverTheLimits(t *testing.T) {
	r := newRig(t, Settings{Budget: config.Size{Bytes: 5 * gib}, MaxLoaded: 3}, map[string]uint64{"a": 3 * gib, "b": 3 * gib})
	r.loadThrough("a")
	r.advance(time.Minute)
	r.onCard["b"] = 3 * gib // another client loads b
	r.poll()
	if r.state("b") != Loaded {
		t.Fatalf("b not adopted: %s", r.state("b"))
	}
	r.refresh()
	if len(r.fx.unloads) != 1 || r.fx.unloads[0].name != "b" {
		t.Fatalf("unloads %v, want b (never used by us)", r.fx.unloads)
	}
	r.unloaded(nil)
	if n := r.s.ours(); n != 3*gib {
		t.Fatalf("ours %d", n)
	}
	// One model alone over the budget stays: the last one is never shed.
	r.tune.Budget = config.Size{Bytes: 1 * gib}
	r.s.OnSettings(r.tune, nil)
	if len(r.fx.reads) != 0 || len(r.fx.unloads) != 0 {
		t.Fatal("the last model was shed")
	}
}

func TestPausedLoadThatNeedsEvictionFails(t *testing.T) {
	r := newRig(t, Settings{MaxLoaded: 1}, map[string]uint64{"a": 2 * gib, "b": 2 * gib})
	r.loadThrough("a")
	r.s.OnPaused(true)
	w := r.load("b", false)
	r.refresh()
	if res := r.reply(w); !errors.Is(res.err, ErrPaused) {
		t.Fatalf("reply %+v", res)
	}
}

func TestNeverFitsFailsWithoutEvicting(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib, "huge": 40 * gib})
	r.loadThrough("a")
	w := r.load("huge", false)
	r.refresh()
	if res := r.reply(w); !errors.Is(res.err, evict.ErrNeverFits) || len(r.fx.unloads) != 0 {
		t.Fatalf("reply %+v, unloads %v", res, r.fx.unloads)
	}
}

func TestUnknownModelAnsweredAtOnce(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib})
	w := r.load("nope", false)
	if res := r.reply(w); !errors.Is(res.err, ErrModelUnknown) || !strings.Contains(res.err.Error(), "installed: a") {
		t.Fatalf("reply %+v", res)
	}
}

// A model deleted while it loads is forgotten and the list read again.
func TestDeletedMidLoadIsForgotten(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"gone": 2 * gib})
	w := r.load("gone", false)
	r.refresh()
	r.loaded(fmt.Errorf("load gone: %w", ErrModelUnknown))
	if res := r.reply(w); !errors.Is(res.err, ErrModelUnknown) {
		t.Fatalf("reply %+v", res)
	}
	if _, ok := r.cat.models["gone"]; ok || r.fx.discovers == 0 {
		t.Fatalf("still known, discovers %d", r.fx.discovers)
	}
}

// An unload waits for the requests using the model, then runs.
func TestUnloadWaitsForLeases(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib})
	w := r.load("a", true)
	r.refresh()
	r.loaded(nil)
	id := r.reply(w).lease
	u := newWaiter(false)
	r.s.OnUnload(u, "a", "test")
	r.refresh()
	if len(r.fx.unloads) != 0 {
		t.Fatal("unloaded under a running request")
	}
	r.s.OnRelease(id)
	r.refresh()
	r.unloaded(nil)
	if res := r.reply(u); res.err != nil || r.state("a") != Idle {
		t.Fatalf("reply %+v, state %s", res, r.state("a"))
	}
}

// onGPU makes the rig's card an NVIDIA one read through the driver, with
// others bytes held by other programs.
func (r *rig) onGPU(others uint64) {
	var ours uint64
	for _, b := range r.onCard {
		ours += b
	}
	total := uint64(8 * gib)
	used := min(total, ours+others)
	r.conn.vram = card.VRAM{Source: card.SourceNVML, Total: total, Used: used, Free: total - used}
	r.conn.oursAtRead = ours
}

func TestYieldAndRestore(t *testing.T) {
	r := newRig(t, Settings{Pinned: []string{"b"}}, map[string]uint64{"a": 2 * gib, "b": 1 * gib})
	r.loadThrough("a")
	wb := newWaiter(false)
	r.s.OnLoad(wb, "b", "test", 8192) // b at a context of its own
	r.refresh()
	r.loaded(nil)
	if res := r.reply(wb); res.err != nil || res.numCtx != 8192 {
		t.Fatalf("b at 8192: %+v", res)
	}
	y := newWaiter(false)
	r.s.OnYield(y)
	r.recorded()
	for range 2 {
		r.refresh()
		r.unloaded(nil)
	}
	res := r.reply(y)
	slices.Sort(res.evicted)
	if res.err != nil || !slices.Equal(res.evicted, []string{"a", "b"}) || len(r.onCard) != 0 {
		t.Fatalf("yield: %+v, on card %v", res, r.onCard)
	}
	if n := strings.Count(fmt.Sprint(r.fx.kinds()), string(EventYielded)); n != 2 {
		t.Errorf("%d yielded events, want 2 (the pinned model goes too)", n)
	}
	// While the card is given back nothing loads behind the user's back.
	if res := r.reply(r.load("a", false)); !errors.Is(res.err, ErrYielded) {
		t.Fatalf("load while yielded: %+v", res)
	}
	w := newWaiter(false)
	r.s.OnRestore(w)
	ctxs := map[string]int{}
	for range 2 {
		r.refresh()
		l := r.loaded(nil)
		ctxs[l.req.Name] = l.req.NumCtx
	}
	if res := r.reply(w); res.err != nil || len(res.restored) != 2 || len(res.evicted) != 0 {
		t.Fatalf("restore: %+v, want two models restored and none evicted", res)
	}
	if ctxs["a"] != 4096 || ctxs["b"] != 8192 {
		t.Errorf("restored at %v, want the same context lengths (a 4096, b 8192)", ctxs)
	}
	if !slices.Contains(r.fx.kinds(), EventRestored) {
		t.Errorf("no restored event: %v", r.fx.kinds())
	}
}

// A yield that comes while a model loads answers once that model is off
// the card too (a script that yields and then starts a game must not race
// the load), and the model is put back with the rest on restore.
func TestYieldWaitsForTheLoadInFlight(t *testing.T) {
	for _, tc := range []struct {
		name    string
		loadErr error
		yielded []string
	}{
		{"the load succeeds", nil, []string{"a", "b"}},
		{"the load fails", errors.New("out of memory"), []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib, "b": 1 * gib})
			r.loadThrough("a")
			wb := r.load("b", false)
			r.refresh()
			y := newWaiter(false)
			r.s.OnYield(y) // b is loading
			r.recorded()
			if r.answered(y) {
				t.Fatal("the yield answered while b was loading")
			}
			r.loaded(tc.loadErr)
			if res := r.reply(wb); (res.err == nil) != (tc.loadErr == nil) {
				t.Fatalf("b's request: %+v", res)
			}
			for len(r.fx.reads) > 0 || len(r.fx.unloads) > 0 {
				if len(r.fx.reads) > 0 {
					r.refresh()
				} else {
					r.unloaded(nil)
				}
				if r.answered(y) && len(r.onCard) > 0 {
					t.Fatalf("the yield answered with %v still on the card", r.onCard)
				}
			}
			res := r.reply(y)
			if res.err != nil || len(r.onCard) != 0 {
				t.Fatalf("yield: %+v, on card %v", res, r.onCard)
			}
			if got := r.s.yieldedNames(); !slices.Equal(slices.Sorted(slices.Values(got)), tc.yielded) {
				t.Errorf("to put back %v, want %v", got, tc.yielded)
			}
		})
	}
}

// When other programs take the card, the least useful unpinned model goes
// and the user is told why; when they leave, it comes back.
func TestGivesTheCardBackAndRestores(t *testing.T) {
	r := newRig(t, Settings{Policy: "lru"}, map[string]uint64{"old": 3 * gib, "new": 2 * gib})
	r.onGPU(0)
	r.loadThrough("old")
	r.advance(time.Minute)
	r.loadThrough("new")
	r.onGPU(3 * gib) // a game starts: 8 - 3 - margin leaves room for one
	r.poll()
	r.refresh()
	if len(r.fx.unloads) != 1 || r.fx.unloads[0].name != "old" {
		t.Fatalf("unloads %v, want old (least recently used)", r.fx.unloads)
	}
	r.unloaded(nil)
	e := r.fx.events[len(r.fx.events)-1]
	if e.Kind != EventYielded || !strings.Contains(e.Reason, "other programs need 3.0 GiB") {
		t.Fatalf("event %+v", e)
	}
	r.onGPU(3 * gib)
	r.poll()
	if len(r.fx.reads) != 0 {
		t.Fatal("put back while the other program still holds the card")
	}
	r.onGPU(0) // the game quits
	r.poll()
	r.refresh()
	if l := r.loaded(nil); l.req.Name != "old" || l.req.NumCtx != 4096 {
		t.Fatalf("put back %+v", l.req)
	}
	if k := r.fx.kinds(); k[len(k)-1] != EventRestored {
		t.Errorf("events %v", k)
	}
}

func TestSpillIsFlaggedOnlyWithAGPU(t *testing.T) {
	for _, tc := range []struct {
		name   string
		gpu    bool
		vram   func(size uint64) uint64
		flag   bool
		cpuPct int
	}{
		{"all on the GPU", true, func(s uint64) uint64 { return s }, false, 0},
		{"part on the CPU", true, func(s uint64) uint64 { return s * 62 / 100 }, true, 38},
		{"no GPU at all", false, func(uint64) uint64 { return 0 }, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib})
			if tc.gpu {
				r.onGPU(0)
			}
			r.load("a", false)
			r.refresh()
			l := r.fx.loads[0]
			r.fx.loads = nil
			size := uint64(2 * gib)
			r.s.OnLoaded(l.op, []serving.Running{{Name: "a", SizeBytes: size, VRAMBytes: tc.vram(size), ContextLength: 4096}}, nil, time.Second)
			if got := slices.Contains(r.fx.kinds(), EventSpilled); got != tc.flag {
				t.Fatalf("spilled event %v, want %v", got, tc.flag)
			}
			if pct := int(100*r.s.record("a").cpuShare + 0.5); pct != tc.cpuPct {
				t.Errorf("cpu %d %%, want %d", pct, tc.cpuPct)
			}
		})
	}
}

// With gpu_only, a model that spills is loaded again at half the context
// until it fits the GPU, and the history says what was done; one that
// spills even at the smallest context fails, off the card.
func TestGPUOnlyTriesSmallerContexts(t *testing.T) {
	r := newRig(t, Settings{GPUOnly: true}, map[string]uint64{"a": 2 * gib})
	r.cat.models["a"].numCtx = 16384
	r.onGPU(0)
	w := r.load("a", false)
	r.refresh()
	fits := 4096
	for range 3 { // 16384 and 8192 spill, 4096 fits
		l := r.fx.loads[0]
		r.fx.loads = r.fx.loads[1:]
		vram := uint64(2 * gib)
		if l.req.NumCtx > fits {
			vram = gib
		}
		r.onCard["a"] = 2 * gib
		r.s.OnLoaded(l.op, []serving.Running{{Name: "a", SizeBytes: 2 * gib, VRAMBytes: vram, ContextLength: l.req.NumCtx}}, nil, time.Second)
		if l.req.NumCtx > fits {
			r.unloaded(nil)
		}
	}
	if res := r.reply(w); res.err != nil || res.numCtx != 4096 {
		t.Fatalf("reply %+v", res)
	}
	e := r.fx.events[len(r.fx.events)-1]
	if e.Kind != EventLoaded || !strings.Contains(e.Reason, "loaded at 4096 tokens instead of 16384") {
		t.Fatalf("last event %+v", e)
	}

	r = newRig(t, Settings{GPUOnly: true, NumCtx: 4096}, map[string]uint64{"big": 2 * gib})
	r.onGPU(0)
	w = r.load("big", false)
	r.refresh()
	for len(r.fx.loads) > 0 {
		l := r.fx.loads[0]
		r.fx.loads = r.fx.loads[1:]
		r.onCard["big"] = 2 * gib
		r.s.OnLoaded(l.op, []serving.Running{{Name: "big", SizeBytes: 2 * gib, VRAMBytes: gib, ContextLength: l.req.NumCtx}}, nil, time.Second)
		r.unloaded(nil)
	}
	if res := r.reply(w); !errors.Is(res.err, ErrSpilled) || r.state("big") != Idle {
		t.Fatalf("reply %+v, state %s", res, r.state("big"))
	}
}

// "auto" takes the largest power of two up to the trained length that
// fits beside the models that stay; a fixed per-model context is used as
// it is.
func TestPerModelContexts(t *testing.T) {
	r := newRig(t, Settings{Contexts: map[string]int{"auto": ContextAuto, "fixed": 32768}},
		map[string]uint64{"auto": 2 * gib, "fixed": 1 * gib, "other": 3 * gib})
	for name, md := range r.cat.models {
		md.trained = 131072
		md.perToken = 64 << 10 // 64 KiB a token: 4096 more tokens cost 256 MiB
		md.ctxAuto = name == "auto"
		if name == "fixed" {
			md.numCtx = 32768
		}
	}
	r.loadThrough("other") // 3 GiB of the 7 GiB budget stays
	r.load("auto", false)
	r.refresh()
	l := r.loaded(nil)
	// 2 GiB at 4096 + 64 KiB per extra token: 32768 tokens need 3.75 GiB,
	// 65536 need 5.75 GiB; 4 GiB are left.
	if l.req.NumCtx != 32768 {
		t.Fatalf("auto loaded at %d, want 32768", l.req.NumCtx)
	}
	r.load("fixed", false)
	r.refresh()
	for len(r.fx.unloads) > 0 {
		r.unloaded(nil)
	}
	if l := r.loaded(nil); l.req.NumCtx != 32768 {
		t.Fatalf("fixed loaded at %d", l.req.NumCtx)
	}
	// A request with another context for a model we loaded is no reload.
	if res := r.reply(r.load("fixed", false)); !res.already || res.numCtx != 32768 {
		t.Fatalf("hit: %+v", res)
	}
}

// A model whose configured context changes is loaded again at the new one.
func TestContextChangeReloads(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib})
	r.loadThrough("a")
	r.cat.models["a"].numCtx = 8192
	r.s.OnSettings(r.tune, map[string]int{"a": 4096})
	r.refresh()
	if l := r.loaded(nil); l.req.NumCtx != 8192 {
		t.Fatalf("reloaded at %d", l.req.NumCtx)
	}
}

// An unload has the configured load_timeout as its deadline when that is
// shorter than its own minute; past it, the unload fails naming the model,
// which stays loaded, and the queue moves on.
func TestUnloadDeadlineFollowsLoadTimeout(t *testing.T) {
	for _, tc := range []struct {
		configured, want time.Duration
	}{
		{0, unloadDeadline},
		{5 * time.Second, 5 * time.Second},
		{10 * time.Minute, unloadDeadline}, // a long load_timeout is for slow disks
	} {
		r := newRig(t, Settings{LoadTimeout: tc.configured, MaxLoaded: 1}, map[string]uint64{"a": 2 * gib, "b": 2 * gib})
		r.loadThrough("a")
		wb := r.load("b", false) // evicts a
		r.refresh()
		if len(r.fx.unloads) != 1 || r.fx.unloads[0].within != tc.want {
			t.Fatalf("load_timeout %s: eviction %+v, want a within %s", tc.configured, r.fx.unloads, tc.want)
		}
		r.unloaded(nil)
		r.loaded(nil)
		if res := r.reply(wb); res.err != nil {
			t.Fatal(res.err)
		}
		u := newWaiter(false)
		r.s.OnUnload(u, "b", "test")
		r.refresh()
		if len(r.fx.unloads) != 1 || r.fx.unloads[0].within != tc.want {
			t.Fatalf("load_timeout %s: unload %+v, want within %s", tc.configured, r.fx.unloads, tc.want)
		}
	}

	r := newRig(t, Settings{LoadTimeout: 5 * time.Second}, map[string]uint64{"a": 2 * gib, "b": 2 * gib})
	r.loadThrough("a")
	u := newWaiter(false)
	r.s.OnUnload(u, "a", "test")
	r.refresh()
	wb := r.load("b", false) // queued behind the unload
	r.unloaded(fmt.Errorf("a was still loaded after 5s: %w", ErrTimedOut))
	if res := r.reply(u); !errors.Is(res.err, ErrTimedOut) || !strings.Contains(res.err.Error(), "a") {
		t.Fatalf("hung unload: %+v", res)
	}
	if r.state("a") != Loaded {
		t.Errorf("a after a failed unload: %s, want loaded (still on the card)", r.state("a"))
	}
	r.refresh() // b's turn
	r.loaded(nil)
	if res := r.reply(wb); res.err != nil {
		t.Fatalf("the load queued behind a hung unload: %v", res.err)
	}
}

// A load that failed because the server went away (killed, restarting) is
// not held against the model: the next request tries it again at once.
func TestUnreachableServerIsNotTheModelsFailure(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib})
	w := r.load("a", false)
	r.refresh()
	r.loaded(fmt.Errorf("ollama unreachable: load: EOF: %w", ErrUnreachable))
	if res := r.reply(w); !errors.Is(res.err, ErrLoadFailed) {
		t.Fatalf("load with the server gone: %+v", res)
	}
	if !r.s.retryAt("a", "sha256:a", 4096).IsZero() {
		t.Error("a server that went away put the model in backoff")
	}
	w = r.load("a", false)
	r.refresh()
	r.loaded(nil)
	if res := r.reply(w); res.err != nil {
		t.Fatalf("the next request after the server came back: %v", res.err)
	}
}

// A load of a model the list alone described reads its details first.
func TestLoadOfAListedModelReadsItsDetails(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"a": 2 * gib})
	md := r.cat.models["a"]
	md.detailed, md.need, md.est = false, 0, estimate.Breakdown{}
	w := r.load("a", false)
	if !slices.Equal(r.fx.shows, []string{"a"}) || len(r.fx.reads) != 0 {
		t.Fatalf("shows %v reads %v: the details must come first", r.fx.shows, r.fx.reads)
	}
	md.showing = true
	r.s.OnTick() // still waiting: no second read
	if len(r.fx.shows) != 1 {
		t.Fatalf("shows %v", r.fx.shows)
	}
	md.detailed, md.showing, md.need, md.est = true, false, 2*gib, estimate.Breakdown{Total: 2 * gib}
	r.s.OnListed()
	r.refresh()
	r.loaded(nil)
	if res := r.reply(w); res.err != nil {
		t.Fatal(res.err)
	}
}

// With no model-count limit the budget alone decides how many stay.
func TestNoModelLimitKeepsWhatFits(t *testing.T) {
	r := newRig(t, Settings{MaxLoaded: NoModelLimit}, map[string]uint64{"a": 2 * gib, "b": 2 * gib, "c": 2 * gib, "d": 2 * gib})
	for _, n := range []string{"a", "b", "c"} {
		r.loadThrough(n)
		r.advance(time.Minute)
	}
	if len(r.onCard) != 3 {
		t.Fatalf("on card %v, want three models in a 7 GiB budget", r.onCard)
	}
	r.load("d", false)
	r.refresh()
	if len(r.fx.unloads) != 1 {
		t.Fatalf("unloads %v: a fourth 2 GiB model needs one to go", r.fx.unloads)
	}
}

// BestModelForTask goes down the ranking: these decide, without loading,
// which models it passes over and why, and which failures send it on.
func TestFallbackToTheNextModel(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		v    ModelView
		why  string
		err  error
	}{
		{"fits", ModelView{Name: "a", EstimateBytes: 2 * gib}, "", nil},
		{"over the budget", ModelView{Name: "huge", EstimateBytes: 40 * gib}, "huge needs 40.0 GiB, over the 7.0 GiB budget", ErrNeverFits},
		{"backing off", ModelView{Name: "broken", EstimateBytes: gib, RetryAt: now.Add(time.Minute), Error: "out of memory"},
			"broken failed to load lately (out of memory)", ErrLoadFailed},
		{"backoff over", ModelView{Name: "broken", EstimateBytes: gib, RetryAt: now.Add(-time.Second)}, "", nil},
		{"loaded despite a past failure", ModelView{Name: "ok", EstimateBytes: gib, RetryAt: now.Add(time.Minute), Loaded: true}, "", nil},
	} {
		why, err := skip(tc.v, 7*gib, now)
		if why != tc.why || err != tc.err {
			t.Errorf("%s: skip = %q, %v; want %q, %v", tc.name, why, err, tc.why, tc.err)
		}
	}
	for _, tc := range []struct {
		err  error
		next bool
	}{
		{fmt.Errorf("loading x: %w", ErrLoadFailed), true},
		{fmt.Errorf("x: %w", ErrTimedOut), false},
		{errors.Join(fmt.Errorf("x did not load within 10s: %w", ErrTimedOut), ErrLoadFailed), true},
		{fmt.Errorf("x: %w", ErrNeverFits), true},
		{fmt.Errorf("x: %w", evict.ErrNoRoom), true},
		{fmt.Errorf("x: %w", ErrModelUnknown), true},
		{errors.Join(fmt.Errorf("x: %w", ErrUnreachable), ErrLoadFailed), false},
		{fmt.Errorf("not loading x: %w", ErrYielded), false},
		{fmt.Errorf("x needs y evicted: %w", ErrPaused), false},
		{ErrStopped, false},
	} {
		if got := tryNext(tc.err); got != tc.next {
			t.Errorf("tryNext(%v) = %v, want %v", tc.err, got, tc.next)
		}
	}
}

// A model put back after a failed load that itself fails to load (a slow
// machine) is not held against it: the next request loads it.
func TestFailedPutBackIsNotBackedOff(t *testing.T) {
	r := newRig(t, Settings{MaxLoaded: 1}, map[string]uint64{"keep": 2 * gib, "broken": 2 * gib})
	r.loadThrough("keep")
	r.load("broken", false)
	r.refresh()
	r.unloaded(nil)
	r.loaded(errors.New("boom"))
	r.refresh() // keep's put-back
	r.loaded(fmt.Errorf("keep did not load within 10s: %w", ErrTimedOut))
	w := r.load("keep", false)
	r.refresh()
	r.loaded(nil)
	if res := r.reply(w); res.err != nil {
		t.Fatalf("request after a failed put-back: %v", res.err)
	}
}

// An event's kind comes from what the op was for, never from its text: a
// request whose reason reads like a restore is a load, a restore is
// restored, and a put-back after a failed load is a load again.
func TestEventKindFollowsThePurpose(t *testing.T) {
	r := newRig(t, Settings{MaxLoaded: 1}, map[string]uint64{"a": 2 * gib, "broken": 2 * gib})
	w := newWaiter(false)
	r.s.OnLoad(w, "a", "restored: a caller's own words", 0)
	r.refresh()
	r.loaded(nil)
	if k := r.fx.kinds(); k[len(k)-1] != EventLoaded {
		t.Fatalf("a request with a restore-like reason: events %v, want loaded last", k)
	}
	r.load("broken", false)
	r.refresh()
	r.unloaded(nil)
	r.loaded(errors.New("boom"))
	r.refresh() // a's put-back
	r.loaded(nil)
	if k := r.fx.kinds(); k[len(k)-1] != EventLoaded {
		t.Fatalf("a put-back after a failed load: events %v, want loaded last", k)
	}
	y := newWaiter(false)
	r.s.OnYield(y)
	r.recorded()
	r.refresh()
	r.unloaded(nil)
	if res := r.reply(y); res.err != nil || !slices.Equal(res.evicted, []string{"a"}) || res.restored != nil {
		t.Fatalf("yield: %+v", res)
	}
	w = newWaiter(false)
	r.s.OnRestore(w)
	r.refresh()
	r.loaded(nil)
	if k := r.fx.kinds(); k[len(k)-1] != EventRestored {
		t.Fatalf("a restore: events %v, want restored last", k)
	}
	if res := r.reply(w); res.err != nil || !slices.Equal(res.restored, []string{"a"}) || res.evicted != nil {
		t.Fatalf("restore: %+v, want a restored and nothing evicted", res)
	}
}

// Callers that join an op pending for the same model keep what each of
// them needs: a request that joins a put-back or a restore may evict and
// its failure counts, and the scheduler's own ops run even when the
// request that joined them gives up. Two put-backs joined stay gentle.
func TestJoinedOpKeepsWhatEachCallerNeeds(t *testing.T) {
	for _, tc := range []struct {
		pending, joins       purpose
		gentle, forCallers   bool
		wantEventKindRestore bool
	}{
		{loadRequested, loadRequested, false, true, false},
		{loadRequested, reload, false, false, false},
		{loadRequested, putBack, false, false, false},
		{reload, loadRequested, false, false, false},
		{putBack, putBack, true, false, false},
		{putBack, restore, true, false, false},
		{putBack, loadRequested, false, false, false},
		{restore, putBack, true, false, true},
		{restore, loadRequested, false, false, true},
		{restore, reload, false, false, true},
		{unloadRequested, unloadRequested, false, true, false},
	} {
		q, o := &op{why: tc.pending}, &op{why: tc.joins, waiters: []*waiter{newWaiter(false)}}
		q.join(o)
		if q.gentle() != tc.gentle || q.forCallers() != tc.forCallers || (q.why == restore) != tc.wantEventKindRestore || len(q.waiters) != 1 {
			t.Errorf("%v joined by %v: gentle %v, for callers %v, purpose %v, waiters %d; want %v, %v",
				tc.pending, tc.joins, q.gentle(), q.forCallers(), q.why, len(q.waiters), tc.gentle, tc.forCallers)
		}
	}
}

// A request that joins a restore (at the same context length) is served
// by it, and the restore may then evict to make room for the request.
func TestRequestJoinsARestore(t *testing.T) {
	r := newRig(t, Settings{MaxLoaded: 1}, map[string]uint64{"a": 2 * gib, "b": 2 * gib})
	r.loadThrough("a")
	y := newWaiter(false)
	r.s.OnYield(y)
	r.recorded()
	r.refresh()
	r.unloaded(nil)
	r.reply(y)
	back := newWaiter(false)
	r.s.OnRestore(back) // a's restore reads the server first
	r.onCard["b"] = 2 * gib
	r.poll() // meanwhile another client loads b: a's restore would now evict
	w := newWaiter(false)
	r.s.OnLoad(w, "a", "test", 4096) // at the context a is restored at: it joins
	r.refresh()
	if len(r.fx.unloads) != 1 || r.fx.unloads[0].name != "b" {
		t.Fatalf("unloads %v: the restore a request joined must make room", r.fx.unloads)
	}
	r.unloaded(nil)
	r.loaded(nil)
	if res := r.reply(w); res.err != nil || !slices.Equal(res.evicted, []string{"b"}) {
		t.Fatalf("the request that joined: %+v", res)
	}
	if res := r.reply(back); res.err != nil || !slices.Equal(res.restored, []string{"a"}) {
		t.Fatalf("restore: %+v", res)
	}
}

// The state file gets what the scheduler decided, handed to Persist: each
// model's use, a yield and the models to restore, the backoffs running.
func TestPersistGetsTheSchedulersState(t *testing.T) {
	r := newRig(t, Settings{MaxLoaded: 1}, map[string]uint64{"a": 2 * gib, "broken": 2 * gib})
	r.loadThrough("a")
	if u := r.fx.saved.Models["a"]; u.Uses != 1 || !u.LastUsed.Equal(r.clock) {
		t.Fatalf("after a load: use of a %+v", u)
	}
	r.load("broken", false)
	r.refresh()
	r.unloaded(nil)
	r.loaded(errors.New("out of memory"))
	if f, ok := r.fx.saved.Failures[loadKeyOf("broken", "sha256:broken", 4096).String()]; !ok || f.Count != 1 {
		t.Fatalf("after a failed load: failures %v", r.fx.saved.Failures)
	}
	r.refresh() // a's put-back
	r.loaded(nil)
	r.s.OnYield(newWaiter(false))
	r.recorded()
	r.refresh()
	r.unloaded(nil)
	if p := r.fx.saved; !p.HandedBack || len(p.Yielded) != 1 || p.Yielded[0].Name != "a" {
		t.Fatalf("after a yield: handed back %v, yielded %+v", p.HandedBack, p.Yielded)
	}
	// What was handed over is a copy: the scheduler goes on without
	// changing it under the writer.
	kept := r.fx.saved
	r.s.OnRestore(newWaiter(false))
	if !kept.HandedBack || len(kept.Yielded) != 1 {
		t.Fatalf("the saved state changed after it was handed over: %+v", kept)
	}
	// A new scheduler starts from it.
	s := newScheduler(&r.cat, &r.conn, r.tune, &recorder{}, func() time.Time { return r.clock }, r.s.log, kept)
	if !s.handedBack || !slices.Equal(s.yieldedNames(), []string{"a"}) || s.record("a").uses != 2 ||
		s.backingOff(spec{name: "broken", digest: "sha256:broken"}, 4096) == nil {
		t.Fatalf("restarted from the state file: handed back %v, yielded %v, a %+v", s.handedBack, s.yieldedNames(), s.record("a"))
	}
}

// A poll runs beside the loads and unloads: a list of loaded models read
// before an unload or a load ended, and handled after it, must not undo it
// (the evicted model "adopted" back, the model just loaded "unloaded by
// Ollama"); the next poll, begun after, decides.
func TestAPollOlderThanAnOutcomeChangesNothing(t *testing.T) {
	r := newRig(t, Settings{}, map[string]uint64{"a": 3 * gib, "b": 3 * gib, "c": 3 * gib})
	r.loadThrough("a")
	r.loadThrough("b")
	count := func(kind EventKind, model string) int {
		n := 0
		for _, e := range r.fx.events {
			if e.Kind == kind && e.Model == model {
				n++
			}
		}
		return n
	}

	// c makes room: one of a and b goes while a poll is under way.
	w := r.load("c", false)
	r.refresh()
	if len(r.fx.unloads) != 1 {
		t.Fatalf("unloads %v, want one to make room for c", r.fx.unloads)
	}
	gone := r.fx.unloads[0].name
	since, stale := r.s.changes, r.ps()
	r.unloaded(nil)
	loadsBefore := count(EventLoaded, gone)
	r.s.OnPoll(stale, since)
	if st := r.state(gone); st != Idle || count(EventLoaded, gone) != loadsBefore {
		t.Errorf("after a poll read before its unload ended, %s is %s with %d loaded events (want idle, %d)",
			gone, st, count(EventLoaded, gone), loadsBefore)
	}

	// c loads while another poll is under way.
	since, stale = r.s.changes, r.ps()
	r.loaded(nil)
	if res := r.reply(w); res.err != nil {
		t.Fatal(res.err)
	}
	r.s.OnPoll(stale, since)
	if st := r.state("c"); st != Loaded || count(EventUnloadedByOllama, "c") != 0 {
		t.Errorf("after a poll read before its load ended, c is %s, unloaded by Ollama %d times (want loaded, 0)",
			st, count(EventUnloadedByOllama, "c"))
	}

	// A poll begun after both sees what the server does: another client
	// unloads c.
	delete(r.onCard, "c")
	r.poll()
	if st := r.state("c"); st != Idle || count(EventUnloadedByOllama, "c") != 1 {
		t.Errorf("after c left the server, c is %s, unloaded by Ollama %d times (want idle, 1)", st, count(EventUnloadedByOllama, "c"))
	}
}
