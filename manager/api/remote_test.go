package api_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/fakert"
	"github.com/vramkeeper/vramkeeper/internal/mgrtest"
	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// A settings patch sent through the API changes exactly the fields it
// names; one the manager does not know, or a malformed value, is a 400 and
// changes nothing.
func TestSettingsPatchOverTheWire(t *testing.T) {
	start := manager.Settings{
		Budget: config.Size{Bytes: 5 << 30}, MaxLoaded: 3, NumCtx: 8192, GPUOnly: true, LoadTimeout: 90 * time.Second,
		Contexts: map[string]int{"a:7b": 2048, "b:3b": manager.ContextAuto},
	}
	with := func(f func(s *manager.Settings)) manager.Settings {
		s := start
		s.Contexts = maps.Clone(start.Contexts)
		f(&s)
		return s
	}
	for _, tc := range []struct {
		body   string
		status int
		want   manager.Settings
	}{
		{`{}`, 200, start},
		{`{"max_loaded":4}`, 200, with(func(s *manager.Settings) { s.MaxLoaded = 4 })},
		{`{"budget":"80%"}`, 200, with(func(s *manager.Settings) { s.Budget = config.Size{Percent: 80} })},
		{`{"budget":""}`, 200, with(func(s *manager.Settings) { s.Budget = config.Size{} })},
		{`{"contexts":{"a:7b":null,"c:1b":"auto","d:1b":32768}}`, 200, with(func(s *manager.Settings) {
			s.Contexts = map[string]int{"b:3b": manager.ContextAuto, "c:1b": manager.ContextAuto, "d:1b": 32768}
		})},
		{`{"load_timeout":"2m","gpu_only":false,"no_prefetch":true}`, 200, with(func(s *manager.Settings) {
			s.LoadTimeout, s.GPUOnly, s.NoPrefetch = 2*time.Minute, false, true
		})},
		{`{"taks":1}`, 400, start},
		{`{"budget":"lots"}`, 400, start},
		{`{"contexts":{"a:7b":"big"}}`, 400, start},
		{`{"load_timeout":"-1s"}`, 400, start},
	} {
		k := &fakeKeeper{settings: with(func(*manager.Settings) {})}
		hs := httptest.NewServer(server.New(k, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, server.Options{}).Handler())
		resp, err := http.Post(hs.URL+"/keeper/v1/settings", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		hs.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: HTTP %d, want %d", tc.body, resp.StatusCode, tc.status)
		}
		if !reflect.DeepEqual(k.settings, tc.want) {
			t.Errorf("%s: settings\n %+v\nwant\n %+v", tc.body, k.settings, tc.want)
		}
	}
}

// eventKeeper is a fakeKeeper whose events the test sends.
type eventKeeper struct {
	fakeKeeper
	events chan manager.Event
}

func (k *eventKeeper) Subscribe(int) (<-chan manager.Event, func()) { return k.events, func() {} }

// The window's Keeper over the API: pause, settings, and events relayed to
// a subscriber.
func TestRemote(t *testing.T) {
	k := &eventKeeper{fakeKeeper: fakeKeeper{models: map[string]bool{"a:b": true}}, events: make(chan manager.Event, 1)}
	hs := httptest.NewServer(server.New(k, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, server.Options{}).Handler())
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, hs.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	r := client.NewRemote(c, nil)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(r.Snapshot().Models); got != 1 {
		t.Fatalf("snapshot has %d models, want 1", got)
	}
	ev, unsubscribe := r.Subscribe(4)
	defer unsubscribe()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(rctx) }()
	defer func() { stop(); <-done }()

	if err := r.SetPaused(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := r.SetPaused(ctx, false); err != nil {
		t.Fatal(err)
	}
	three, ctx2k := 3, 2048
	for _, p := range []manager.SettingsPatch{
		{Budget: &config.Size{Bytes: 3<<30 + 5}, MaxLoaded: &three, NumCtx: &ctx2k},
		{Budget: &config.Size{Percent: 80}},
	} {
		if err := r.Apply(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// The second patch named only the budget: the rest stays.
	want := []string{"paused true", "paused false", "apply 3.0 GiB 3 2048", "apply 80% 3 2048"}
	if got := strings.Join(k.called(), ","); got != strings.Join(want, ",") {
		t.Errorf("calls %s, want %s", got, strings.Join(want, ","))
	}

	// The stream may open after the first send; keep offering the event
	// until the subscriber has it.
	sent := manager.Event{Kind: manager.EventEvicted, Model: "a:b"}
	for {
		select {
		case k.events <- sent:
		case e := <-ev:
			if e.Kind == manager.EventVRAM {
				continue // "look again", sent when the stream connects
			}
			if e.Kind != sent.Kind || e.Model != sent.Model {
				t.Fatalf("relayed %+v, want %+v", e, sent)
			}
			return
		case <-ctx.Done():
			t.Fatal("no event relayed")
		}
	}
}

// POST /keeper/v1/ollama/start runs the tray's hook; without one (serve)
// it is 404.
func TestStartOllama(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		hook   func(context.Context) (wire.StartOllamaResponse, error)
		status int
	}{
		{"no hook", nil, 404},
		{"hook", func(context.Context) (wire.StartOllamaResponse, error) {
			return wire.StartOllamaResponse{Started: true, Ours: true, PID: 42}, nil
		}, 0},
		{"server exits at once", func(context.Context) (wire.StartOllamaResponse, error) {
			return wire.StartOllamaResponse{Ours: true, LastExit: "exit status 1"}, errors.New("ollama serve does not answer (it exited: exit status 1)")
		}, 502},
	} {
		hs := httptest.NewServer(server.New(&fakeKeeper{}, &url.URL{Scheme: "http", Host: "127.0.0.1:1"},
			server.Options{StartOllama: tc.hook}).Handler())
		c, err := client.Dial(ctx, hs.URL, "")
		if err != nil {
			t.Fatal(err)
		}
		err = c.StartOllama(ctx)
		var ae *client.Error
		switch {
		case tc.status == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.status != 0 && (!errors.As(err, &ae) || ae.Status != tc.status):
			t.Errorf("%s: %v, want HTTP %d", tc.name, err, tc.status)
		}
		hs.Close()
	}
}

// The window follows its tray's manager through a Remote: a change made
// elsewhere (the tray's menu, the command line, a client of the proxy)
// must reach it at once, as an event after which its Snapshot shows the
// change; the window redraws on events (and polls for what has none).
func TestRemoteSeesChangesMadeElsewhere(t *testing.T) {
	// What a user accepts between a click in the tray and the window
	// showing it, with room for a loaded test machine.
	const prompt = 5 * time.Second
	rt := fakert.New()
	rt.Add("llama3.2:1b", 1.2, []string{"completion", "tools"}, 1)
	rt.Add("qwen2.5-coder:1.5b", 1.5, []string{"completion", "insert", "tools"}, 1)
	m := mgrtest.Start(t, manager.Options{
		Runtime: rt, GPU: &fakert.GPU{RT: rt, Total: 8 << 30},
		Logger: slog.New(slog.DiscardHandler), Settings: manager.Settings{MaxLoaded: 2},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(server.New(m, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, server.Options{Log: slog.New(slog.DiscardHandler)}).Handler())
	defer hs.Close()
	c, err := client.Dial(ctx, hs.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	r := client.NewRemote(c, slog.New(slog.DiscardHandler))
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ev, unsubscribe := r.Subscribe(64)
	defer unsubscribe()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(rctx) }()
	defer func() { stop(); <-done }()

	// The Remote says when its event stream is up: changes from then on
	// reach it.
	select {
	case <-ev:
	case <-time.After(prompt):
		t.Fatalf("the Remote did not connect within %v", prompt)
	}
	model := func(s manager.Snapshot) manager.ModelView { v, _ := s.Model("llama3.2:1b"); return v }
	four := 4
	settings := manager.EventSettings
	for _, tc := range []struct {
		what   string
		change func() error
		shown  func(manager.Snapshot) bool
		// kind is the instance's event that tells of the change: the
		// window redraws on it, and the snapshot it reads then shows it.
		kind manager.EventKind
	}{
		{"pause", func() error { return m.SetPaused(ctx, true) }, func(s manager.Snapshot) bool { return s.Paused }, settings},
		{"resume", func() error { return m.SetPaused(ctx, false) }, func(s manager.Snapshot) bool { return !s.Paused }, settings},
		{"pin", func() error { return m.SetPinned(ctx, "llama3.2:1b", true) }, func(s manager.Snapshot) bool { return model(s).Pinned }, settings},
		{"settings", func() error { return m.Apply(ctx, manager.SettingsPatch{MaxLoaded: &four}) },
			func(s manager.Snapshot) bool { return s.Settings.MaxLoaded == 4 }, settings},
		{"load", func() error { _, err := m.LoadAt(ctx, "llama3.2:1b", 0, "test"); return err },
			func(s manager.Snapshot) bool { return model(s).Loaded }, manager.EventLoaded},
		{"unpin", func() error { return m.SetPinned(ctx, "llama3.2:1b", false) }, func(s manager.Snapshot) bool { return !model(s).Pinned }, settings},
		{"unload", func() error { return m.Unload(ctx, "llama3.2:1b") }, func(s manager.Snapshot) bool { return !model(s).Loaded }, manager.EventUnloaded},
	} {
		// Let the connection's "look again" and the last step's events
		// pass first: only an event after the change counts.
		for drained := false; !drained; {
			select {
			case <-ev:
			default:
				drained = true
			}
		}
		if err := tc.change(); err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		deadline := time.After(prompt)
	wait:
		for {
			select {
			case e := <-ev:
				if e.Kind != tc.kind {
					continue
				}
				if s := r.Snapshot(); !tc.shown(s) {
					t.Errorf("%s: the %s event came, but the status read on it does not show the change", tc.what, e.Kind)
				}
				break wait
			case <-deadline:
				t.Errorf("%s: no %s event within %v", tc.what, tc.kind, prompt)
				break wait
			}
		}
	}
}
