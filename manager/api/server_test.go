package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/api/proxy"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
	"github.com/vramkeeper/vramkeeper/manager/score"
	"github.com/vramkeeper/vramkeeper/manager/serving"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// fakeKeeper records calls and answers from a table; no goroutines of its
// own, but the server's handlers call it from theirs.
type fakeKeeper struct {
	models map[string]bool // name → loaded
	mu     sync.Mutex
	calls  []string
	// loadedCtx is the context each model is loaded at, as Acquire says.
	loadedCtx map[string]int
	// fail, when set, is what Acquire, LoadAt, Yield and Restore return.
	fail     error
	yielded  []string
	settings manager.Settings // as Apply left them
}

func (f *fakeKeeper) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

// called is the calls so far.
func (f *fakeKeeper) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeKeeper) known(name string) error {
	if _, ok := f.models[name]; !ok {
		return fmt.Errorf("%q: %w", name, manager.ErrModelUnknown)
	}
	return nil
}

func (f *fakeKeeper) Acquire(ctx context.Context, name, reason string) (func(), manager.LoadResult, error) {
	f.record("acquire " + name)
	if f.fail != nil {
		return func() {}, manager.LoadResult{}, f.fail
	}
	if err := f.known(name); err != nil {
		return func() {}, manager.LoadResult{}, err
	}
	return func() { f.record("release " + name) }, manager.LoadResult{Model: name, NumCtx: f.loadedCtx[name]}, nil
}

func (f *fakeKeeper) BestModelForTask(ctx context.Context, task, role string) (manager.Choice, error) {
	switch task {
	case "huge":
		return manager.Choice{}, fmt.Errorf("no model fits: %w", manager.ErrNeverFits)
	case "chat":
		return manager.Choice{Model: "a/b:c", Reason: "test"}, nil
	}
	return manager.Choice{}, fmt.Errorf("task %q: %w", task, manager.ErrUnknownTask)
}

// Plan answers from the table: a loaded model is loaded, any other known
// one would evict every loaded one; the task "chat" plans "a/b:c".
func (f *fakeKeeper) Plan(_ context.Context, req manager.PlanRequest) (manager.Plan, error) {
	f.record("plan " + req.Model + req.Task)
	name := req.Model
	if req.Task != "" {
		c, err := f.BestModelForTask(context.Background(), req.Task, req.Role)
		if err != nil {
			return manager.Plan{}, err
		}
		name = c.Model
	}
	if err := f.known(name); err != nil {
		return manager.Plan{}, err
	}
	p := manager.Plan{Model: name, CanLoad: true, Loaded: f.models[name], Evict: []string{}}
	if !p.Loaded {
		for _, n := range slices.Sorted(maps.Keys(f.models)) {
			if f.models[n] {
				p.Evict = append(p.Evict, n)
			}
		}
	}
	p.FitsNow = len(p.Evict) == 0
	return p, nil
}

func (f *fakeKeeper) LoadAt(ctx context.Context, name string, numCtx int, reason string) (manager.LoadResult, error) {
	if numCtx > 0 {
		f.record(fmt.Sprintf("load %s at %d", name, numCtx))
	} else {
		f.record("load " + name)
	}
	if f.fail != nil {
		return manager.LoadResult{Model: name}, f.fail
	}
	return manager.LoadResult{Model: name, NumCtx: numCtx}, f.known(name)
}

// Yield unloads every loaded model, in name order, and remembers them.
func (f *fakeKeeper) Yield(context.Context) ([]string, error) {
	f.record("yield")
	if f.fail != nil {
		return nil, f.fail
	}
	for _, n := range slices.Sorted(maps.Keys(f.models)) {
		if f.models[n] {
			f.models[n] = false
			f.yielded = append(f.yielded, n)
		}
	}
	return f.yielded, nil
}

// Restore loads what Yield unloaded.
func (f *fakeKeeper) Restore(context.Context) ([]string, error) {
	f.record("restore")
	if f.fail != nil {
		return nil, f.fail
	}
	back := f.yielded
	for _, n := range back {
		f.models[n] = true
	}
	f.yielded = nil
	return back, nil
}

func (f *fakeKeeper) Unload(ctx context.Context, name string) error {
	f.record("unload " + name)
	return f.known(name)
}

func (f *fakeKeeper) SetPinned(ctx context.Context, name string, pinned bool) error {
	f.record(fmt.Sprintf("pin %s %v", name, pinned))
	return f.known(name)
}

func (f *fakeKeeper) Snapshot() manager.Snapshot {
	s := manager.Snapshot{OllamaUp: true, Tasks: score.Defaults().TaskNames()}
	for n, l := range f.models {
		s.Models = append(s.Models, manager.ModelView{Name: n, Loaded: l, NumCtx: 2048, Fits: true})
	}
	// Sorted by name, as the manager publishes them (Snapshot.Model
	// searches by halves).
	slices.SortFunc(s.Models, func(a, b manager.ModelView) int { return strings.Compare(a.Name, b.Name) })
	return s
}

func (f *fakeKeeper) Subscribe(int) (<-chan manager.Event, func()) {
	ch := make(chan manager.Event)
	return ch, func() {}
}
func (f *fakeKeeper) History() []manager.Event { return nil }
func (f *fakeKeeper) Timeline(context.Context, time.Time) (timeline.Window, error) {
	return timeline.Window{}, nil
}
func (f *fakeKeeper) Rank(task, role string) ([]score.Ranked, error) {
	return nil, nil
}
func (f *fakeKeeper) Refresh(context.Context) error { return nil }
func (f *fakeKeeper) SetPaused(_ context.Context, paused bool) error {
	f.record(fmt.Sprintf("paused %v", paused))
	return nil
}

// Apply edits the settings the last Apply left, as the manager does.
func (f *fakeKeeper) Apply(_ context.Context, p manager.SettingsPatch) error {
	p.ApplyTo(&f.settings)
	o := f.settings
	f.record(fmt.Sprintf("apply %s %d %d", o.Budget, o.MaxLoaded, o.NumCtx))
	return nil
}

// Pull streams two steps and installs the model; a name with "missing"
// in it is not in the registry.
func (f *fakeKeeper) Pull(_ context.Context, req serving.PullRequest, progress func(serving.PullProgress)) error {
	f.record("pull " + req.Name)
	progress(serving.PullProgress{Status: "pulling manifest"})
	if strings.Contains(req.Name, "missing") {
		return fmt.Errorf("pull model manifest: file does not exist: %w", manager.ErrModelUnknown)
	}
	progress(serving.PullProgress{Status: "pulling sha256:1", Digest: "sha256:1", Total: 100, Completed: 100})
	progress(serving.PullProgress{Status: "success"})
	if f.models == nil {
		f.models = map[string]bool{}
	}
	f.models[req.Name] = false
	return nil
}

func TestParseAlias(t *testing.T) {
	for _, tc := range []struct {
		in, task, role string
		ok             bool
	}{
		{"auto:code_generation", "code_generation", "", true},
		{"auto:code_generation/architect", "code_generation", "architect", true},
		{"auto:", "", "", false},
		{"llama3:8b", "", "", false},
		{"hf.co/user/model:Q4", "", "", false},
	} {
		task, role, ok := proxy.ParseAlias(tc.in)
		if task != tc.task || role != tc.role || ok != tc.ok {
			t.Errorf("ParseAlias(%q) = %q %q %v", tc.in, task, role, ok)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:11435": true, "localhost:11435": true, "[::1]:11435": true,
		":11435": false, "0.0.0.0:11435": false, "192.168.1.2:11435": false,
	} {
		if got := wire.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
	s := server.New(&fakeKeeper{}, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, server.Options{})
	if err := s.Serve(context.Background(), "0.0.0.0:0"); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("Serve on all interfaces without a token: %v", err)
	}
}

// The management API over a fake manager: names with slashes, actions,
// errors mapped to codes and back to the manager's sentinels.
func TestManagementAPI(t *testing.T) {
	f := &fakeKeeper{models: map[string]bool{"hf.co/user/model:Q4": false, "a/b:c": true}}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"upstream":"`+r.URL.Path+`","auth":"`+r.Header.Get("Authorization")+`","key":"`+r.Header.Get("X-Api-Key")+`"}`)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	hs := httptest.NewServer(server.New(f, u, server.Options{Token: "t"}).Handler())
	defer hs.Close()
	ctx := context.Background()
	c, err := client.Dial(ctx, hs.URL, "t")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(ctx, "hf.co/user/model:Q4", "test"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPinned(ctx, "hf.co/user/model:Q4", true); err != nil {
		t.Fatal(err)
	}
	if err := c.Unload(ctx, "a/b:c"); err != nil {
		t.Fatal(err)
	}
	want := []string{"load hf.co/user/model:Q4", "pin hf.co/user/model:Q4 true", "unload a/b:c"}
	if strings.Join(f.called(), ",") != strings.Join(want, ",") {
		t.Errorf("calls %v, want %v", f.called(), want)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
		code int
	}{
		{"unknown model", c.Unload(ctx, "nope"), manager.ErrModelUnknown, 404},
		{"unknown task", func() error { _, err := c.BestModelForTask(ctx, "juggle", ""); return err }(), manager.ErrUnknownTask, 400},
		{"never fits", func() error { _, err := c.BestModelForTask(ctx, "huge", ""); return err }(), manager.ErrNeverFits, 507},
	} {
		var ae *client.Error
		if !errors.Is(tc.err, tc.want) || !errors.As(tc.err, &ae) || ae.Status != tc.code {
			t.Errorf("%s: %v, want %v with HTTP %d", tc.name, tc.err, tc.want, tc.code)
		}
	}
	// The proxy takes the token in either header and drops it before
	// Ollama sees it; a wrong or missing one is refused.
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"bearer", map[string]string{"Authorization": "Bearer t"}, 200},
		{"x-api-key (Anthropic SDKs)", map[string]string{"x-api-key": "t", "anthropic-version": "2023-06-01"}, 200},
		{"wrong bearer", map[string]string{"Authorization": "Bearer u"}, 401},
		{"wrong x-api-key", map[string]string{"x-api-key": "u"}, 401},
		{"wrong bearer, right x-api-key", map[string]string{"Authorization": "Bearer u", "x-api-key": "t"}, 401},
		{"none", nil, 401},
	} {
		req, _ := http.NewRequest("GET", hs.URL+"/api/version", nil)
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: HTTP %d, want %d: %s", tc.name, resp.StatusCode, tc.status, b)
			continue
		}
		if tc.status == 200 && string(b) != `{"upstream":"/api/version","auth":"","key":""}` {
			t.Errorf("%s: the token reached Ollama: %s", tc.name, b)
		}
	}
}
