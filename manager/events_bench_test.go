package manager

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/estimate"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// What one event costs the owner: the work of its goroutine for a poll, a
// load done, a settings change, a request and its release, with 10 and
// with 1,000 models installed. Each event costs what it changes, so the
// two sizes cost about the same (a poll where another program's use moved
// redoes the views whose largest fitting context moves, and no others).
// The owner is driven one event at a time through the code Run runs
// (step): nothing it would start runs, and the benchmark plays the
// server's answers. cmd/bench runs these too (-only latency).

func BenchmarkEvent(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("poll/models=%d", n), func(b *testing.B) {
			o := newOwnerBench(b, n)
			b.ReportAllocs()
			for b.Loop() {
				o.m.step(o.poll(o.others))
			}
		})
		b.Run(fmt.Sprintf("poll_others_moved/models=%d", n), func(b *testing.B) {
			o := newOwnerBench(b, n)
			others := []uint64{1 << 30, 3 << 29}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				o.m.step(o.poll(others[i%2]))
			}
		})
		b.Run(fmt.Sprintf("load_done/models=%d", n), func(b *testing.B) {
			o := newOwnerBench(b, n)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				op := o.startLoad("extra")
				b.StartTimer()
				o.m.step(evLoaded{op: op, ps: o.ps(o.loaded, "extra")})
				b.StopTimer()
				o.unload("extra")
				b.StartTimer()
			}
		})
		b.Run(fmt.Sprintf("settings_change/models=%d", n), func(b *testing.B) {
			o := newOwnerBench(b, n)
			grace := []time.Duration{time.Minute, 2 * time.Minute}
			reply := make(chan error, 1)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				o.m.step(evApply{f: func(s *Settings) { s.BusyGrace = grace[i%2] }, reply: reply})
				if err := <-reply; err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("request_and_release/models=%d", n), func(b *testing.B) {
			o := newOwnerBench(b, n)
			b.ReportAllocs()
			for b.Loop() {
				w := newWaiter(true)
				o.m.step(evLoad{w: w, name: o.loaded, reason: "bench"})
				r := <-w.reply
				if r.err != nil || r.lease == 0 {
					b.Fatalf("%+v", r)
				}
				o.m.step(evRelease{r.lease})
			}
		})
	}
}

// ownerBench is a manager whose owner the benchmark drives: n models
// installed, sized like a real library's (0.4 to 40 GiB), one loaded, on
// an 8 GiB card read through the driver.
type ownerBench struct {
	b      testing.TB
	m      *Manager
	loaded string
	others uint64 // what other programs hold
}

func newOwnerBench(b testing.TB, n int) *ownerBench {
	m, err := New(Options{Runtime: idleRuntime{}, GPU: idleRuntime{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	m.spawn = func(func(context.Context)) {} // what it starts, the benchmark plays
	paramsB := []float64{0.5, 1.2, 1.5, 3.2, 3.8, 7.6, 8, 9.2, 13, 14.8, 27.2, 32.8, 70}
	for i := range n + 1 {
		p := paramsB[i%len(paramsB)]
		name := fmt.Sprintf("model-%04d:%gb", i, p)
		if i == n {
			name = "extra" // installed, loaded and unloaded by load_done
			p = 1.5
		}
		bytes := uint64(p*0.6*(1<<30)) + 300<<20
		md := &model{inst: serving.Installed{Name: name, Digest: "sha256:" + name, SizeBytes: bytes}, hasDetails: true, detailed: true,
			det: serving.Details{Name: name, ParameterSize: fmt.Sprintf("%gB", p), Capabilities: []string{"completion"}}}
		md.paramsB, md.priority, md.numCtx, md.trained = p, 5, 4096, 131072
		md.est, md.need = estimate.Breakdown{Total: bytes}, bytes
		md.perToken = 16 * 1024 * p // KV cache per token grows with the model
		m.cat.models[name] = md
	}
	m.cat.listed = true
	m.cat.ch.membership()
	o := &ownerBench{b: b, m: m, loaded: "model-0001:1.2b", others: 1 << 30}
	m.conn.up, m.conn.known, m.conn.version = true, true, "0.17.4"
	m.conn.vram, m.cat.dev = o.card(o.others), estimate.GPU // as estimated: no estimator runs here
	m.step(evPolled{vram: o.card(o.others)})
	w := newWaiter(false)
	m.step(evLoad{w: w, name: o.loaded, reason: "bench"})
	if m.sched.cur == nil {
		b.Fatalf("no load: %v", (<-w.reply).err)
	}
	m.step(evRefreshed{op: m.sched.cur.id, ps: nil, vram: o.card(o.others)})
	m.step(evLoaded{op: m.sched.cur.id, ps: o.ps(o.loaded)})
	if r := <-w.reply; r.err != nil {
		b.Fatal(r.err)
	}
	o.m.step(o.poll(o.others))
	return o
}

// ps is /api/ps listing names.
func (o *ownerBench) ps(names ...string) []serving.Running {
	var out []serving.Running
	for _, name := range names {
		md := o.m.cat.models[name]
		out = append(out, serving.Running{Name: name, Digest: md.inst.Digest, SizeBytes: md.need, VRAMBytes: md.need, ContextLength: 4096})
	}
	return out
}

// card is a reading of the card with what the server holds and others.
func (o *ownerBench) card(others uint64) card.VRAM {
	used := others + o.m.sched.ours()
	return card.VRAM{Source: card.SourceNVML, Name: "bench", Total: 8 << 30, Used: used, Free: 8<<30 - used}
}

func (o *ownerBench) poll(others uint64) evPolled {
	return evPolled{since: o.m.sched.changes, ps: o.ps(o.loaded), vram: o.card(others)}
}

// startLoad asks for name and plays the server read before its load; it
// returns the op whose load is then running.
func (o *ownerBench) startLoad(name string) uint64 {
	w := newWaiter(false)
	o.m.step(evLoad{w: w, name: name, reason: "bench"})
	o.m.step(evRefreshed{op: o.m.sched.cur.id, ps: o.ps(o.loaded), vram: o.card(o.others)})
	if o.m.sched.cur == nil {
		o.b.Fatalf("%s: no load runs", name)
	}
	return o.m.sched.cur.id
}

// unload unloads name again, playing the server.
func (o *ownerBench) unload(name string) {
	w := newWaiter(false)
	o.m.step(evUnload{w: w, name: name, reason: "bench"})
	o.m.step(evRefreshed{op: o.m.sched.cur.id, ps: o.ps(o.loaded, name), vram: o.card(o.others)})
	o.m.step(evUnloaded{op: o.m.sched.cur.id, name: name})
	if r := <-w.reply; r.err != nil {
		o.b.Fatal(r.err)
	}
}

// idleRuntime is a server and a card never asked: the benchmark answers.
type idleRuntime struct{}

func (idleRuntime) List(context.Context) ([]serving.Installed, error) { return nil, nil }
func (idleRuntime) Show(context.Context, string) (serving.Details, error) {
	return serving.Details{}, nil
}
func (idleRuntime) Load(context.Context, serving.LoadRequest) error    { return nil }
func (idleRuntime) Unload(context.Context, string) error               { return nil }
func (idleRuntime) Running(context.Context) ([]serving.Running, error) { return nil, nil }
func (idleRuntime) Version(context.Context) (string, error)            { return "0.17.4", nil }
func (idleRuntime) Pull(context.Context, serving.PullRequest, func(serving.PullProgress)) error {
	return nil
}
func (idleRuntime) Read(context.Context) (card.VRAM, error) { return card.VRAM{}, nil }
