package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// Give the GPU back and put it back through the API: the answers name the
// models, and the client and Remote see the same.
func TestYieldRestore(t *testing.T) {
	f := &fakeKeeper{models: map[string]bool{"a/b:c": true, "idle:7b": false, "z:1b": true}}
	ctx, _, c := serveKeeper(t, f)
	got, err := c.Yield(ctx)
	if err != nil || !slices.Equal(got, []string{"a/b:c", "z:1b"}) {
		t.Fatalf("Yield = %v, %v; want the two loaded models", got, err)
	}
	back, err := c.Restore(ctx)
	if err != nil || !slices.Equal(back, []string{"a/b:c", "z:1b"}) {
		t.Fatalf("Restore = %v, %v; want the two models back", back, err)
	}
	// Nothing to restore: an empty list, not null.
	r := client.NewRemote(c, nil)
	if back, err := r.Restore(ctx); err != nil || back == nil || len(back) != 0 {
		t.Fatalf("second Restore = %#v, %v; want []", back, err)
	}
	if want := []string{"yield", "restore", "restore"}; !slices.Equal(f.called(), want) {
		t.Errorf("manager calls %v, want %v", f.called(), want)
	}
}

// The load endpoint takes a context length; a negative one is the client's
// mistake.
func TestLoadAtContext(t *testing.T) {
	f := &fakeKeeper{models: map[string]bool{"hf.co/u/m:Q4": false}}
	ctx, hs, c := serveKeeper(t, f)
	res, err := c.LoadAt(ctx, "hf.co/u/m:Q4", 16384, "test")
	if err != nil || res.NumCtx != 16384 {
		t.Fatalf("LoadAt = %+v, %v; want it loaded at 16384", res, err)
	}
	if _, err := client.NewRemote(c, nil).LoadAt(ctx, "hf.co/u/m:Q4", 0, "test"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"load hf.co/u/m:Q4 at 16384", "load hf.co/u/m:Q4"}; !slices.Equal(f.called(), want) {
		t.Errorf("manager calls %v, want %v", f.called(), want)
	}
	resp, err := http.Post(hs.URL+"/keeper/v1/models/hf.co/u/m:Q4/load", "application/json", strings.NewReader(`{"context_length":-4}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "context_length") {
		t.Errorf("negative context: %d %s; want 400 naming context_length", resp.StatusCode, b)
	}
	if len(f.called()) != 2 {
		t.Errorf("a refused request reached the manager: %v", f.called())
	}
}

// The manager's new errors keep their meaning across the wire: status,
// code, message, and errors.Is on the client's side.
func TestNewErrorsOverTheWire(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
		is     []error
	}{
		{"yielded", fmt.Errorf("not loading m: %w", manager.ErrYielded), 409, wire.CodeYielded, []error{manager.ErrYielded}},
		{"load timed out", fmt.Errorf("loading m: %w", errors.Join(
			fmt.Errorf("m did not load within 10s (load_timeout): %w", manager.ErrTimedOut), manager.ErrLoadFailed)),
			504, wire.CodeLoadTimeout, []error{manager.ErrTimedOut, manager.ErrLoadFailed}},
		{"unload timed out", fmt.Errorf("m was still loaded after 10s: %w", manager.ErrTimedOut), 504, wire.CodeTimedOut, []error{manager.ErrTimedOut}},
		{"spilled", errors.Join(fmt.Errorf("m does not fit on the GPU (38 %% on the CPU): %w", manager.ErrSpilled), manager.ErrLoadFailed),
			409, wire.CodeSpilled, []error{manager.ErrSpilled}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeKeeper{models: map[string]bool{"m:1b": true}, fail: tc.err}
			ctx, hs, c := serveKeeper(t, f)
			_, err := c.LoadAt(ctx, "m:1b", 0, "test")
			var ae *client.Error
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code {
				t.Fatalf("error %v; want HTTP %d code %s", err, tc.status, tc.code)
			}
			for _, want := range tc.is {
				if !errors.Is(err, want) {
					t.Errorf("error %v is not %v on the client's side", err, want)
				}
			}
			if !strings.Contains(ae.Message, tc.err.Error()) {
				t.Errorf("message %q lost the manager's %q", ae.Message, tc.err)
			}
			// The proxy answers an agent the same way, in Ollama's shape.
			resp, err := http.Post(hs.URL+"/api/generate", "application/json", strings.NewReader(`{"model":"m:1b","prompt":"hi"}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Error string }
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || body.Error != tc.err.Error() {
				t.Errorf("proxy: %d %q; want %d %q", resp.StatusCode, body.Error, tc.status, tc.err)
			}
		})
	}
}

// A proxied request runs at the context the model is loaded at, not the
// model's default nor the client's: any other would make Ollama reload it.
func TestProxyForcesLoadedContext(t *testing.T) {
	for _, tc := range []struct {
		name   string
		loaded int // what Acquire reports
		want   float64
	}{
		{"loaded at another context", 16384, 16384},
		{"context unknown: the model's own", 0, 2048}, // fakeKeeper's views say 2048
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent []byte
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sent, _ = io.ReadAll(r.Body)
				io.WriteString(w, `{"model":"m:1b","response":"","done":true}`)
			}))
			defer up.Close()
			u, _ := url.Parse(up.URL)
			f := &fakeKeeper{models: map[string]bool{"m:1b": true}, loadedCtx: map[string]int{"m:1b": tc.loaded}}
			hs := httptest.NewServer(server.New(f, u, server.Options{}).Handler())
			defer hs.Close()
			resp, err := http.Post(hs.URL+"/api/generate", "application/json",
				strings.NewReader(`{"model":"m:1b","prompt":"hi","options":{"num_ctx":4096}}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := path(decode(t, sent), "options", "num_ctx"); got != tc.want {
				t.Errorf("Ollama got num_ctx %v, want %v (%s)", got, tc.want, sent)
			}
		})
	}
}

func TestYieldFailsClearly(t *testing.T) {
	f := &fakeKeeper{models: map[string]bool{}, fail: manager.ErrStopped}
	ctx, _, c := serveKeeper(t, f)
	if _, err := c.Yield(ctx); !errors.Is(err, manager.ErrStopped) {
		t.Errorf("Yield on a stopping manager: %v", err)
	}
	if _, err := c.Restore(ctx); !errors.Is(err, manager.ErrStopped) {
		t.Errorf("Restore on a stopping manager: %v", err)
	}
}

// The settings endpoint carries gpu_only, load_timeout and per-model
// contexts; absent ones stay as they were, {} clears the contexts.
func TestSettingsNewFields(t *testing.T) {
	f := &fakeKeeper{models: map[string]bool{}}
	ctx, hs, c := serveKeeper(t, f)
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(hs.URL+"/keeper/v1/settings", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := post(`{"gpu_only":true,"load_timeout":"90s","contexts":{"qwen2.5-coder:7b":32768,"llama3.2:3b":"auto"}}`); code != 200 {
		t.Fatalf("settings: %d %s", code, b)
	}
	want := map[string]int{"qwen2.5-coder:7b": 32768, "llama3.2:3b": manager.ContextAuto}
	if s := f.settings; !s.GPUOnly || s.LoadTimeout != 90*time.Second || !maps.Equal(s.Contexts, want) {
		t.Fatalf("applied %+v", s)
	}
	if code, b := post(`{"max_loaded":3}`); code != 200 {
		t.Fatalf("settings: %d %s", code, b)
	}
	if s := f.settings; !s.GPUOnly || s.LoadTimeout != 90*time.Second || !maps.Equal(s.Contexts, want) || s.MaxLoaded != 3 {
		t.Fatalf("absent fields changed: %+v", s)
	}
	// Remote.Apply sends the patch whole: false, zero and null included.
	r := client.NewRemote(c, nil)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	off, zero := false, config.Duration(0)
	if err := r.Apply(ctx, manager.SettingsPatch{GPUOnly: &off, LoadTimeout: &zero,
		Contexts: manager.ContextsPatch(want, nil)}); err != nil {
		t.Fatal(err)
	}
	if s := f.settings; s.GPUOnly || s.LoadTimeout != 0 || len(s.Contexts) != 0 || s.MaxLoaded != 3 {
		t.Fatalf("after Remote.Apply clearing them: %+v", s)
	}
	for _, tc := range []struct{ body, names string }{
		{`{"load_timeout":"soon"}`, "load_timeout"},
		{`{"load_timeout":"-5s"}`, "load_timeout"},
		{`{"contexts":{"m":0}}`, "contexts.m"},
		{`{"contexts":{"m":"big"}}`, "auto"},
		{`{"contexts":{"m":99999999999}}`, "contexts.m"},
		{`{"contexts":{"":4096}}`, "empty"},
	} {
		code, b := post(tc.body)
		if code != 400 || !strings.Contains(b, tc.names) {
			t.Errorf("%s: %d %s; want 400 naming %s", tc.body, code, b, tc.names)
		}
	}
}

// FuzzSettingsPatch: any body is refused, or, valid, crosses the wire
// unchanged (what the window sends is what the endpoint applies) and
// changes exactly what it names.
func FuzzSettingsPatch(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"budget":"7GiB","max_loaded":2,"context_length":4096}`,
		`{"gpu_only":true,"load_timeout":"90s","contexts":{"a:1b":8192,"b":"AUTO"}}`,
		`{"contexts":{"a":"auto","b":1,"c":null}}`, `{"contexts":null}`, `{"load_timeout":""}`,
		`{"contexts":{"a":1.5}}`, `{"contexts":{"a":-1}}`, `{"budget":"80%","contexts":{}}`,
		`{"context_length":9223372036854775807}`, `{"policy":"gdsf","busy_grace":"10s","no_prefetch":false}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p manager.SettingsPatch
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if dec.Decode(&p) != nil || p.Validate() != nil {
			return
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var p2 manager.SettingsPatch
		if err := json.Unmarshal(again, &p2); err != nil {
			t.Fatalf("%s: %v", again, err)
		}
		if err := p2.Validate(); err != nil {
			t.Fatalf("valid %s comes back as invalid %s: %v", b, again, err)
		}
		base := manager.Settings{MaxLoaded: 7, NumCtx: 1234, Contexts: map[string]int{"kept:1b": 99}}
		s1, s2 := base, base
		p.ApplyTo(&s1)
		p2.ApplyTo(&s2)
		if !reflect.DeepEqual(s1, s2) {
			t.Fatalf("%s applied as %+v; after the trip (%s) as %+v", b, s1, again, s2)
		}
		if p.MaxLoaded == nil && s1.MaxLoaded != 7 || p.NumCtx == nil && s1.NumCtx != 1234 {
			t.Fatalf("%s changed a field it does not name: %+v", b, s1)
		}
		if _, named := p.Contexts["kept:1b"]; !named && s1.Contexts["kept:1b"] != 99 {
			t.Fatalf("%s changed a model context it does not name: %v", b, s1.Contexts)
		}
	})
}
