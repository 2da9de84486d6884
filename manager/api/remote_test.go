package api_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	keeper "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

func TestSettingsRequestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  keeper.SettingsRequest
		want config.Size
		err  string
	}{
		{"defaults", keeper.SettingsRequest{}, config.Size{}, ""},
		{"bytes", keeper.SettingsRequest{Budget: "1GiB", MaxLoaded: 2, ContextLength: 4096}, config.Size{Bytes: 1 << 30}, ""},
		{"percent", keeper.SettingsRequest{Budget: "80%"}, config.Size{Percent: 80}, ""},
		{"bad budget", keeper.SettingsRequest{Budget: "lots"}, config.Size{}, "budget"},
		{"negative", keeper.SettingsRequest{MaxLoaded: -1, ContextLength: -2}, config.Size{}, "context_length"},
	} {
		got, err := tc.req.Validate()
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want one naming %q", tc.name, err, tc.err)
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
	hs := httptest.NewServer(keeper.New(k, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, keeper.Options{}).Handler())
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := keeper.Dial(ctx, hs.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	r := keeper.NewRemote(c, nil)
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
	for _, o := range []manager.Settings{
		{Budget: config.Size{Bytes: 3<<30 + 5}, MaxLoaded: 3, NumCtx: 2048},
		{Budget: config.Size{Percent: 80}},
	} {
		if err := r.Apply(ctx, func(p *manager.Settings) { p.Budget, p.MaxLoaded, p.NumCtx = o.Budget, o.MaxLoaded, o.NumCtx }); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ApplySettings(ctx, keeper.SettingsRequest{Budget: "lots"}); !errors.Is(err, keeper.ErrBadRequest) {
		t.Errorf("bad budget: %v, want ErrBadRequest", err)
	}
	want := []string{"paused true", "paused false", "apply 3.0 GiB 3 2048", "apply 80% 0 0"}
	if got := strings.Join(k.calls, ","); got != strings.Join(want, ",") {
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
		hook   func(context.Context) (keeper.StartOllamaResponse, error)
		status int
	}{
		{"no hook", nil, 404},
		{"hook", func(context.Context) (keeper.StartOllamaResponse, error) {
			return keeper.StartOllamaResponse{Started: true, Ours: true, PID: 42}, nil
		}, 0},
		{"server exits at once", func(context.Context) (keeper.StartOllamaResponse, error) {
			return keeper.StartOllamaResponse{Ours: true, LastExit: "exit status 1"}, errors.New("ollama serve does not answer (it exited: exit status 1)")
		}, 502},
	} {
		hs := httptest.NewServer(keeper.New(&fakeKeeper{}, &url.URL{Scheme: "http", Host: "127.0.0.1:1"},
			keeper.Options{StartOllama: tc.hook}).Handler())
		c, err := keeper.Dial(ctx, hs.URL, "")
		if err != nil {
			t.Fatal(err)
		}
		err = c.StartOllama(ctx)
		var ae *keeper.Error
		switch {
		case tc.status == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.status != 0 && (!errors.As(err, &ae) || ae.Status != tc.status):
			t.Errorf("%s: %v, want HTTP %d", tc.name, err, tc.status)
		}
		hs.Close()
	}
}
