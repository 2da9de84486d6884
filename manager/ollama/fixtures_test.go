package ollama

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// fixtureServer answers /api/tags and /api/ps with files from testdata,
// written from Ollama's api/types.go and server code at the version named by
// the folder (v0.34.2: routes.go ListHandler and PsHandler, sched.go).
func fixtureServer(t *testing.T, tags, ps string) (*Client, *int) {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tagsBody, psBody := read(tags), read(ps)
	tagsCalls := 0
	c, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/tags":
			tagsCalls++
			_, _ = w.Write(tagsBody)
		case "/api/ps":
			_, _ = w.Write(psBody)
		default:
			http.NotFound(w, r)
		}
	})
	return c, &tagsCalls
}

func TestListFixtures(t *testing.T) {
	tests := []struct {
		file string
		want map[string]serving.Installed // by name: capabilities, context length, size
	}{
		{"v0.34.2/tags.json", map[string]serving.Installed{
			"qwen3:8b":                {Capabilities: []string{"completion", "tools", "thinking"}, ContextLength: 40960, SizeBytes: 5225388164},
			"gemma3:4b":               {Capabilities: []string{"completion", "vision"}, ContextLength: 131072, SizeBytes: 3338801804},
			"nomic-embed-text:latest": {Capabilities: []string{"embedding"}, ContextLength: 2048, SizeBytes: 274302450},
			// A cloud model: listed with its capabilities, no context length.
			"gpt-oss:120b-cloud": {Capabilities: []string{"completion", "tools", "thinking"}, SizeBytes: 384},
		}},
		// v0.17.4 sends neither: discovery must fall back to /api/show.
		{"v0.17.4/tags.json", map[string]serving.Installed{
			"qwen3:8b": {SizeBytes: 5225388164},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, _ := fixtureServer(t, tt.file, "v0.34.2/ps-cpu.json")
			got, err := c.List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			eachByName(t, got, func(m serving.Installed) string { return m.Name }, tt.want, func(m serving.Installed, w serving.Installed) {
				if !reflect.DeepEqual(m.Capabilities, w.Capabilities) || m.ContextLength != w.ContextLength || m.SizeBytes != w.SizeBytes {
					t.Errorf("%s: capabilities %v, context %d, size %d; want %v, %d, %d",
						m.Name, m.Capabilities, m.ContextLength, m.SizeBytes, w.Capabilities, w.ContextLength, w.SizeBytes)
				}
				if m.Digest == "" || m.ModifiedAt.IsZero() {
					t.Errorf("%s: digest %q, modified %v: want both", m.Name, m.Digest, m.ModifiedAt)
				}
			})
		})
	}
}

func TestRunningFixtures(t *testing.T) {
	type want struct {
		loading bool
		size    uint64
	}
	tests := []struct {
		name     string
		ps       string
		want     map[string]want
		askTags  bool // only a possible loading model with an unlisted digest costs a /api/tags call
		wantGone []string
	}{
		{
			// v0.30: llama-server started, no buffer logged yet: file size as
			// both sizes. gemma3 has finished (buffers, larger than its file).
			name: "one loading", ps: "v0.34.2/ps-loading.json", askTags: true,
			want: map[string]want{"qwen3:8b": {true, 5225388164}, "gemma3:4b": {false, 4187336704}},
		},
		{
			name: "loaded", ps: "v0.34.2/ps-loaded.json", askTags: true,
			want: map[string]want{"qwen3:8b": {false, 5998925414}, "gemma3:4b": {false, 4187336704}},
		},
		{
			// Ollama evicted gemma3 itself: it is simply absent, still installed.
			name: "evicted by ollama", ps: "v0.34.2/ps-evicted.json", askTags: true,
			want:     map[string]want{"qwen3:8b": {false, 5998925414}},
			wantGone: []string{"gemma3:4b"},
		},
		{
			// CPU only: size_vram 0, so a size equal to the file is a finished
			// load, and no /api/tags call is needed to tell.
			name: "cpu", ps: "v0.34.2/ps-cpu.json", askTags: false,
			want: map[string]want{"nomic-embed-text:latest": {false, 274302450}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, tagsCalls := fixtureServer(t, "v0.34.2/tags.json", tt.ps)
			got, err := c.Running(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			eachByName(t, got, func(r serving.Running) string { return r.Name }, tt.want, func(r serving.Running, w want) {
				if r.Loading != w.loading || r.SizeBytes != w.size {
					t.Errorf("%s: loading %v, size %d; want %v, %d", r.Name, r.Loading, r.SizeBytes, w.loading, w.size)
				}
				// keep_alive -1 shows as a far-future expiry, while loading too.
				if r.ExpiresAt.Year() < 2100 && r.VRAMBytes > 0 {
					t.Errorf("%s: expires %v, want the far future of keep_alive -1", r.Name, r.ExpiresAt)
				}
				if r.ContextLength == 0 {
					t.Errorf("%s: no context length", r.Name)
				}
			})
			for _, g := range tt.wantGone {
				if containsModel(got, g) {
					t.Errorf("%s listed as running", g)
				}
			}
			if (*tagsCalls > 0) != tt.askTags {
				t.Errorf("/api/tags called %d times; want a call: %v", *tagsCalls, tt.askTags)
			}
			// File sizes are remembered by digest: the next poll asks no more.
			calls := *tagsCalls
			if again, err := c.Running(context.Background()); err != nil || len(again) != len(got) {
				t.Fatalf("second Running: %v, %d models", err, len(again))
			}
			if *tagsCalls != calls {
				t.Errorf("second Running called /api/tags again (%d calls, had %d)", *tagsCalls, calls)
			}
		})
	}
}

// A loading candidate whose file size cannot be learned fails the call
// rather than passing a file size off as a measurement.
func TestRunningLoadingNeedsTags(t *testing.T) {
	c, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/ps":
			writeJSON(w, 200, map[string]any{"models": []map[string]any{
				{"name": "a:latest", "size": 100, "size_vram": 100, "digest": "d", "expires_at": time.Now()},
			}})
		default:
			writeJSON(w, 500, map[string]string{"error": "boom"})
		}
	})
	if _, err := c.Running(context.Background()); err == nil {
		t.Fatal("Running succeeded without /api/tags")
	}
}

// eachByName checks that got holds exactly the names in want and runs
// check on each with its expectation.
func eachByName[T, W any](t *testing.T, got []T, name func(T) string, want map[string]W, check func(T, W)) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for _, g := range got {
		w, ok := want[name(g)]
		if !ok {
			t.Errorf("unexpected entry %q", name(g))
			continue
		}
		check(g, w)
	}
}
