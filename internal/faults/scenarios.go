package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/vramkeeper/vramkeeper/internal/faultproxy"
	"github.com/vramkeeper/vramkeeper/manager"
	keeper "github.com/vramkeeper/vramkeeper/manager/api"
)

// Scenarios are every fault, in the order the table lists them.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "Load hangs", run: hungLoad,
			Injected: "one model's load held at the proxy, never answered",
			Recovery: "from the hang taking hold to the other task's answer"},
		{Name: "Load always fails", run: failingLoad,
			Injected: fmt.Sprintf("every load of a task's best model answered 500 with Ollama's out-of-memory error; asked for %d times in a row", tries),
			Recovery: "from the first failure to the fallback's answer"},
		{Name: "Ollama answers 500", run: serverErrors,
			Injected: "/api/ps and /api/tags answer 500 while the server runs",
			Recovery: "from the server answering again to the next load served"},
		{Name: "Stream cut", run: cutStream,
			Injected: fmt.Sprintf("connection dropped after %d bytes of a streamed /api/generate, behind VRAM Keeper's proxy", cutAfter),
			Recovery: "from the cut to the next generation served"},
		{Name: "Server killed mid-load", run: killedMidLoad,
			Injected: "SIGKILL to Ollama and its runners while a model loads, then a restart",
			Recovery: "from the restart to the next load served"},
		{Name: "Unload never ends", run: hungUnload,
			Injected: "one model's unload held at the proxy, never answered",
			Recovery: "from the hang taking hold to the queued load served"},
		{Name: "Unloaded behind our back", run: stoppedOutside,
			Injected: "keep_alive 0 sent straight to Ollama (`ollama stop`) while a request holds the model",
			Recovery: "from the model leaving /api/ps to the next request for it served"},
	}
}

// anyTask returns the first task whose best fitting model is not one of
// avoid, and that model.
func (r *run) anyTask(avoid ...string) (task, model string) {
	for _, t := range r.m.Snapshot().Tasks {
		if rs := r.ranked(t); len(rs) > 0 && !slices.Contains(avoid, rs[0]) {
			return t, rs[0]
		}
	}
	return "", ""
}

// hungLoad: one model's load hangs at Ollama. The manager gives it up at
// load_timeout with an error naming it, and a request for another task,
// queued behind it, is answered within load_timeout plus its own load.
func hungLoad(r *run) string {
	hung := r.bySize()[len(r.bySize())-1]
	task, other := r.anyTask(hung)
	if task == "" {
		r.fail("no task picks a model other than %s", hung)
		return "no second task"
	}
	r.setBudget(r.sumEstimates(hung, other) * 11 / 10)
	r.proxy.Set(faultproxy.Rule{Match: faultproxy.Match{Model: hung, Intent: faultproxy.Load}, Fault: faultproxy.Hang})

	hungErr := make(chan error, 1)
	go func() { hungErr <- r.load("load "+hung+" (hung)", hung, LoadTimeout+slack) }()
	if err := r.proxy.Wait(r.ctx, faultproxy.Match{Model: hung, Intent: faultproxy.Load}, 1); err != nil {
		r.fail("the hung load never reached the proxy: %v", err)
		<-hungErr
		return "the load never started"
	}
	r.faultOver()
	began := time.Now()
	var c manager.Choice
	err := r.request("best for "+task, "", LoadTimeout+slack+slack, func(ctx context.Context) (err error) {
		c, err = r.m.BestModelForTask(ctx, task, "")
		return err
	})
	took := time.Since(began)
	herr := <-hungErr

	r.check(err == nil && c.Model == other, "best for %s = %q, %v; want %s", task, c.Model, err, other)
	own := time.Duration(0)
	if e, ok := r.event(manager.EventLoaded, other); ok {
		own = e.Duration
	}
	r.check(took <= LoadTimeout+own+slack, "best for %s answered in %s, over load_timeout %s + its own load %s + %s", task, took, LoadTimeout, own, slack)
	r.check(errors.Is(herr, manager.ErrTimedOut) && strings.Contains(herr.Error(), short(hung)),
		"the hung load's error = %v; want a timeout naming %s", herr, hung)
	r.waitFor(hung+" not on the card after its load was given up", settleWithin, func() bool {
		ps, err := r.ollamaLoaded()
		return err == nil && !slices.Contains(ps, hung) && !r.view(hung).Loaded
	})
	return fmt.Sprintf("%s's load given up at load_timeout (%s): %s. Best for %s answered %s in %s (its own load: %s)",
		short(hung), LoadTimeout, quote(herr), task, short(c.Model), secs(took), secs(own))
}

// tries is how many times in a row the failing model is asked for.
const tries = 10

// failingLoad: a task's best model always fails to load (out of memory)
// and is asked for ten times in a row. The models it evicts are evicted
// once and put back, the failure is remembered (one load reaches Ollama),
// and the best model for its task, in the manager and in the CLI, is the
// next one that fits.
func failingLoad(r *run) string {
	var task string
	var ranked []string
	for _, t := range r.m.Snapshot().Tasks {
		if rs := r.ranked(t); len(rs) >= 2 {
			task, ranked = t, rs
			break
		}
	}
	if task == "" {
		r.fail("no task has two models that fit")
		return "no task with a fallback"
	}
	bad := ranked[0]
	var others []string
	for _, v := range r.m.Snapshot().Models {
		if v.Name != bad && len(others) < MaxLoaded {
			others = append(others, v.Name)
		}
	}
	// Everything fits the budget; the model limit forces an eviction.
	budget := (r.sumEstimates(others...) + r.estimate(bad)) * 11 / 10
	r.setBudget(budget)
	for _, o := range others {
		r.load("load "+o, o, LoadTimeout+slack)
	}
	before, _ := r.ollamaLoaded()
	r.proxy.Set(faultproxy.Rule{Match: faultproxy.Match{Model: bad, Intent: faultproxy.Load}, Fault: faultproxy.Respond,
		Status: http.StatusInternalServerError, Message: faultproxy.OutOfMemory(4*r.estimate(bad), r.estimate(bad))})

	r.faultOver()
	var first error
	for i := range tries {
		err := r.load(fmt.Sprintf("load %s (%d/%d)", bad, i+1, tries), bad, LoadTimeout+slack)
		r.check(errors.Is(err, manager.ErrLoadFailed), "request %d for %s: %v; want a failed load", i+1, bad, err)
		if i == 0 {
			first = err
		}
	}
	r.waitFor("the card as it was before the failed load", settleWithin, func() bool {
		ps, err := r.ollamaLoaded()
		return err == nil && slices.Equal(ps, before)
	})
	evicted := 0
	for _, o := range others {
		n := r.proxy.Count(faultproxy.Match{Model: o, Intent: faultproxy.Unload})
		r.check(n <= 1, "%s was unloaded %d times for %s's failing loads", o, n, bad)
		evicted += n
	}
	reached := r.proxy.Count(faultproxy.Match{Model: bad, Intent: faultproxy.Load})
	r.check(reached == 1, "%s's load reached Ollama %d times in %d requests; want 1 (the failure remembered)", bad, reached, tries)

	var c manager.Choice
	err := r.request("best for "+task, "", LoadTimeout+slack, func(ctx context.Context) (err error) {
		c, err = r.m.BestModelForTask(ctx, task, "")
		return err
	})
	r.check(err == nil && c.Model == ranked[1] && strings.Contains(c.Reason, short(bad)),
		"best for %s = %q (%q), %v; want %s, saying why not %s", task, c.Model, c.Reason, err, ranked[1], bad)

	r.freeze() // the CLI is another manager, with loads of its own
	cli := r.cli(task, budget)
	return fmt.Sprintf("all %d failed naming it: %s. %d load reached Ollama, %d model evicted once and put back. Best for %s: %s; `vramkeeper best %s`: %s",
		tries, quote(first), reached, evicted, task, short(c.Model), task, cli)
}

// cli runs `vramkeeper best task` against the proxy with its own state and
// checks that it exits 0 with a model other than the failing one.
func (r *run) cli(task string, budget uint64) string {
	if r.env.CLI == "" {
		r.fail("no vramkeeper binary to run")
		return "not run"
	}
	var chosen struct {
		Model string `json:"model"`
	}
	var stdout, stderr bytes.Buffer
	code := -1
	err := r.request("vramkeeper best "+task, "", 2*LoadTimeout+slack, func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, r.env.CLI, "best", task, "--json",
			"--ollama", r.proxy.URL.String(), "--state-dir", filepath.Join(r.dir, "cli"),
			"--config", filepath.Join(r.dir, "cli", "config.toml"), "--listen", "127.0.0.1:1",
			"--budget", fmt.Sprintf("%dB", budget), "--max-loaded", fmt.Sprint(MaxLoaded), "--ctx", fmt.Sprint(NumCtx))
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code = cmd.ProcessState.ExitCode()
		if err != nil {
			return fmt.Errorf("exit %d: %s", code, strings.TrimSpace(stderr.String()))
		}
		return json.Unmarshal(stdout.Bytes(), &chosen)
	})
	r.check(err == nil && code == 0 && chosen.Model != "", "vramkeeper best %s: %v (stdout %q)", task, err, stdout.String())
	return fmt.Sprintf("exit %d, %s", code, short(chosen.Model))
}

// serverErrors: Ollama's process lives but /api/ps and /api/tags answer 500
// for a while. The manager shows Ollama down, a load that needs the server
// fails at once naming its model, a model already loaded is still served,
// and once the server answers the next load works and nothing is reloaded.
func serverErrors(r *run) string {
	sizes := r.bySize()
	kept, next := sizes[0], sizes[1]
	r.setBudget(r.sumEstimates(kept, next) * 11 / 10)
	r.load("load "+kept, kept, LoadTimeout+slack)
	down := "ollama: internal server error (injected)"
	r.proxy.Set(
		faultproxy.Rule{Match: faultproxy.Match{Path: "/api/ps"}, Fault: faultproxy.Respond, Message: down},
		faultproxy.Rule{Match: faultproxy.Match{Path: "/api/tags"}, Fault: faultproxy.Respond, Message: down},
	)
	began := time.Now()
	r.waitFor("the manager sees Ollama down", settleWithin, func() bool { return !r.m.Snapshot().OllamaUp })
	noticed := time.Since(began)
	during := r.load("load "+next+" while Ollama answers 500", next, LoadTimeout+slack)
	r.check(during != nil, "loading %s while /api/ps answers 500 succeeded; the manager cannot have checked the card", next)
	r.load("load "+kept+" (loaded) while Ollama answers 500", kept, slack)

	r.proxy.Set()
	r.faultOver()
	r.waitFor("the manager sees Ollama up", settleWithin, func() bool { return r.m.Snapshot().OllamaUp })
	after := r.load("load "+next+" after", next, LoadTimeout+slack)
	r.check(after == nil, "loading %s after the outage: %v", next, after)
	_, wentDown := r.event(manager.EventOllamaDown, "")
	_, cameBack := r.event(manager.EventOllamaUp, "")
	r.check(wentDown && cameBack, "events: ollama_down %v, ollama_up %v; want both", wentDown, cameBack)
	n := r.proxy.Count(faultproxy.Match{Model: kept, Intent: faultproxy.Load})
	r.check(n == 1, "%s was loaded %d times; want once (it never left)", kept, n)
	return fmt.Sprintf("Ollama shown down after %s; a load of %s refused at once: %s. %s, loaded before, still served. Once healthy, %s loaded and %s not reloaded",
		secs(noticed), short(next), quote(during), short(kept), short(next), short(kept))
}

// cutAfter is where the stream is cut: a couple of a generation's lines.
const cutAfter = 250

// cutStream: the connection between VRAM Keeper's proxy and Ollama drops
// mid-stream. The client's stream fails, the model's lease is released and
// the next request is served by the same load.
func cutStream(r *run) string {
	model := r.bySize()[0]
	r.setBudget(r.estimate(model) * 2)
	base, stop, err := r.serveAPI()
	if err != nil {
		r.fail("starting VRAM Keeper's API: %v", err)
		return "no API"
	}
	defer stop()
	client := api.NewClient(base, &http.Client{})
	opts := map[string]any{"num_predict": 8, "temperature": 0}

	r.proxy.Set(faultproxy.Rule{Match: faultproxy.Match{Path: "/api/generate", Model: model, Intent: faultproxy.Infer},
		Fault: faultproxy.Cut, After: cutAfter, Times: 1})
	var chunks int
	cut := r.request("streamed generate on "+model+" (cut)", "", LoadTimeout+2*slack, func(ctx context.Context) error {
		return client.Generate(ctx, &api.GenerateRequest{Model: model, Prompt: "count to ten", Options: opts},
			func(api.GenerateResponse) error { chunks++; return nil })
	})
	r.faultOver()
	r.check(cut != nil && chunks > 0, "the stream cut after %d bytes: %d chunk(s), error %v; want some chunks, then an error", cutAfter, chunks, cut)
	r.waitFor("the lease on "+model+" released", settleWithin, func() bool { return r.view(model).InFlight == 0 })

	var resp api.GenerateResponse
	stream := false
	again := r.request("generate on "+model+" again", model, LoadTimeout+2*slack, func(ctx context.Context) error {
		return client.Generate(ctx, &api.GenerateRequest{Model: model, Prompt: "count to ten", Stream: &stream, Options: opts},
			func(g api.GenerateResponse) error { resp = g; return nil })
	})
	r.check(again == nil && resp.Done && resp.Model == model, "the next generation: %v, %+v", again, resp)
	n := r.proxy.Count(faultproxy.Match{Model: model, Intent: faultproxy.Load})
	r.check(n == 1, "%s was loaded %d times; want once", model, n)
	// The official client reports the half line it got as its error, so
	// the message says nothing a reader could use; the count does.
	return fmt.Sprintf("the client's stream failed after %d chunk(s) (an error, not a short answer). The lease was released; the next generation was served by the same load", chunks)
}

// serveAPI runs VRAM Keeper's API over the scenario's manager, talking to
// Ollama through the fault proxy, until stop.
func (r *run) serveAPI() (base *url.URL, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	s := keeper.New(r.m, r.proxy.URL, keeper.Options{Log: r.env.Log, AcquireTimeout: LoadTimeout + slack})
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(l) }()
	return &url.URL{Scheme: "http", Host: l.Addr().String()}, func() { _ = srv.Close(); <-served }, nil
}

// killedMidLoad: Ollama and its runners are killed with SIGKILL while a
// model loads, then started again. The load fails at once naming the
// model, the manager shows Ollama down, then up with nothing loaded (the
// model it had is reported unloaded by Ollama), and the next load works.
func killedMidLoad(r *run) string {
	sizes := r.bySize()
	kept, loading := sizes[0], sizes[len(sizes)-1]
	r.setBudget(r.sumEstimates(kept, loading) * 11 / 10)
	r.load("load "+kept, kept, LoadTimeout+slack)

	runners := newLogWatch(r.env.Ollama.LogPath, `msg="starting runner"`)
	loadErr := make(chan error, 1)
	go func() { loadErr <- r.load("load "+loading+" (server killed)", loading, LoadTimeout+slack) }()
	started := r.waitFor("Ollama starting "+loading+"'s runner", LoadTimeout, func() bool { return runners.count() >= 1 })
	var killed time.Time
	if started {
		r.env.Ollama.Kill()
		killed = time.Now()
	}
	err := <-loadErr
	failedAfter := time.Since(killed)
	r.check(started && err != nil, "the load killed midway: %v (killed: %v)", err, started)
	r.waitFor("the manager sees Ollama down", settleWithin, func() bool { return !r.m.Snapshot().OllamaUp })
	if err := r.env.Ollama.Relaunch(); err != nil {
		r.fail("restarting Ollama: %v", err)
		return "no restart"
	}
	r.faultOver()
	r.waitFor("the manager sees Ollama back with nothing loaded", settleWithin, func() bool {
		s := r.m.Snapshot()
		return s.OllamaUp && len(s.LoadedModels()) == 0
	})
	_, lost := r.event(manager.EventUnloadedByOllama, kept)
	r.check(lost, "no unloaded_by_ollama event for %s, which the restart dropped", kept)
	after := r.load("load "+loading+" after the restart", loading, LoadTimeout+slack)
	r.check(after == nil, "loading %s after the restart: %v", loading, after)
	return fmt.Sprintf("the load failed %s after the kill: %s. Ollama shown down, then up with %s reported unloaded_by_ollama; %s loaded again after the restart",
		secs(failedAfter), quote(err), short(kept), short(loading))
}

// hungUnload: one model's unload never finishes. It fails at its deadline
// naming the model, which stays loaded and counted, and a load queued
// behind it is served.
func hungUnload(r *run) string {
	sizes := r.bySize()
	stuck, next := sizes[0], sizes[1]
	r.setBudget(r.sumEstimates(stuck, next) * 11 / 10)
	r.load("load "+stuck, stuck, LoadTimeout+slack)
	r.proxy.Set(faultproxy.Rule{Match: faultproxy.Match{Model: stuck, Intent: faultproxy.Unload}, Fault: faultproxy.Hang})

	unloadErr := make(chan error, 1)
	go func() {
		unloadErr <- r.request("unload "+stuck+" (hung)", stuck, LoadTimeout+slack, func(ctx context.Context) error {
			return r.m.Unload(ctx, stuck)
		})
	}()
	if err := r.proxy.Wait(r.ctx, faultproxy.Match{Model: stuck, Intent: faultproxy.Unload}, 1); err != nil {
		r.fail("the unload never reached the proxy: %v", err)
		<-unloadErr
		return "the unload never started"
	}
	r.faultOver()
	queued := r.load("load "+next+" queued behind the hung unload", next, 2*LoadTimeout+slack)
	err := <-unloadErr
	r.check(queued == nil, "the load queued behind the hung unload: %v", queued)
	r.check(errors.Is(err, manager.ErrTimedOut) && strings.Contains(err.Error(), short(stuck)),
		"the hung unload's error = %v; want a timeout naming %s", err, stuck)
	r.check(r.view(stuck).Loaded, "%s is not shown loaded although its unload never reached Ollama", stuck)
	r.proxy.Set()
	return fmt.Sprintf("the unload failed at its deadline: %s. %s still shown loaded (and counted); the load queued behind it served",
		quote(err), short(stuck))
}

// stoppedOutside: a model is unloaded straight at Ollama while a request
// holds it. The next poll reports it unloaded_by_ollama, its lease no
// longer holds anything, and the next request loads it again.
func stoppedOutside(r *run) string {
	model := r.bySize()[0]
	r.setBudget(r.estimate(model) * 2)
	var release func()
	r.request("hold "+model, model, LoadTimeout+slack, func(ctx context.Context) (err error) {
		release, _, err = r.m.Acquire(ctx, model, "fault scenario")
		return err
	})
	if release == nil {
		return "no hold"
	}
	defer release()
	if err := stopModel(r.ctx, r.env.Ollama.Client, model); err != nil {
		r.fail("ollama stop %s: %v", model, err)
	}
	r.waitFor(model+" gone from /api/ps", settleWithin, func() bool {
		ps, err := r.ollamaLoaded()
		return err == nil && !slices.Contains(ps, model)
	})
	r.faultOver()
	polls := r.proxy.Count(faultproxy.Match{Path: "/api/ps"})
	e, ok := r.event(manager.EventUnloadedByOllama, model)
	r.check(ok, "no unloaded_by_ollama event for %s", model)
	took := r.proxy.Count(faultproxy.Match{Path: "/api/ps"}) - polls
	// The poll that tells, plus one that may have been on its way.
	r.check(took <= 2, "unloaded_by_ollama came %d polls after %s left /api/ps; want the next poll", took, model)
	v := r.view(model)
	r.check(!v.Loaded && v.InFlight == 0, "%s after it left: loaded %v, %d lease(s) holding it", model, v.Loaded, v.InFlight)
	release()
	again := r.load("load "+model+" again", model, LoadTimeout+slack)
	r.check(again == nil, "loading %s again: %v", model, again)
	return fmt.Sprintf("reported %d poll(s) later: %q. The lease holds nothing; the next request loaded it again", took, e.Reason)
}

// quote is an error's message for the table: on one line, cut short.
func quote(err error) string {
	if err == nil {
		return "no error"
	}
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if r := []rune(msg); len(r) > 150 {
		msg = string(r[:147]) + "..."
	}
	return "“" + msg + "”"
}

// secs is a duration as the table shows it.
func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// logWatch counts a line's occurrences in a growing log, from when it was
// made.
type logWatch struct {
	path, needle string
	offset       int64
}

func newLogWatch(path, needle string) *logWatch {
	w := &logWatch{path: path, needle: needle}
	if fi, err := os.Stat(path); err == nil {
		w.offset = fi.Size()
	}
	return w
}

func (w *logWatch) count() int {
	f, err := os.Open(w.path)
	if err != nil {
		return 0
	}
	defer f.Close()
	if _, err := f.Seek(w.offset, 0); err != nil {
		return 0
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		return 0
	}
	return strings.Count(b.String(), w.needle)
}
