package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vramkeeper/vramkeeper/manager/score"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr string
	}{
		{in: "7GiB", want: Size{Bytes: 7 << 30}},
		{in: "7 GiB", want: Size{Bytes: 7 << 30}},
		{in: "7gib", want: Size{Bytes: 7 << 30}},
		{in: "7G", want: Size{Bytes: 7 << 30}}, // bare letter = binary
		{in: "7GB", want: Size{Bytes: 7e9}},
		{in: "7000MB", want: Size{Bytes: 7e9}},
		{in: "512MiB", want: Size{Bytes: 512 << 20}},
		{in: "512M", want: Size{Bytes: 512 << 20}},
		{in: "1.5GiB", want: Size{Bytes: 3 << 29}},
		{in: "1TiB", want: Size{Bytes: 1 << 40}},
		{in: "64KiB", want: Size{Bytes: 64 << 10}},
		{in: "7516192768", want: Size{Bytes: 7516192768}},
		{in: "100B", want: Size{Bytes: 100}},
		{in: " 80% ", want: Size{Percent: 80}},
		{in: "100%", want: Size{Percent: 100}},
		{in: "1%", want: Size{Percent: 1}},
		{in: "", wantErr: "empty"},
		{in: "0", wantErr: "more than zero"},
		{in: "0%", wantErr: "between 1 and 100"},
		{in: "101%", wantErr: "between 1 and 100"},
		{in: "abc%", wantErr: "bad percentage"},
		{in: "-7GiB", wantErr: "no number"},
		{in: "GiB", wantErr: "no number"},
		{in: "7 parsecs", wantErr: "unknown unit"},
		{in: "1.2.3G", wantErr: "bad number"},
		{in: "99999999999TiB", wantErr: "too large"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSize(%q) err = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestResolve(t *testing.T) {
	const total = 8 << 30
	tests := []struct {
		s    Size
		want uint64
	}{
		{Size{Bytes: 7 << 30}, 7 << 30},
		{Size{Percent: 50}, 4 << 30},
		{Size{Percent: 100}, total},
		{Size{}, 0},
	}
	for _, tt := range tests {
		if got := tt.s.Resolve(total); got != tt.want {
			t.Errorf("%+v.Resolve = %d, want %d", tt.s, got, tt.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0 B"},
		{100, "100 B"},
		{2048, "2 KiB"},
		{512 << 20, "512 MiB"},
		{(1 << 30) - 1, "1023 MiB"},
		{1 << 30, "1.0 GiB"},
		{7 << 30, "7.0 GiB"},
		{7e9, "6.5 GiB"},
		{3 << 29, "1.5 GiB"},
		{2 << 40, "2.0 TiB"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.in); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBudgetAndVRAMBytes(t *testing.T) {
	const total = 8 << 30
	tests := []struct {
		name   string
		budget string
		total  uint64
		want   uint64
	}{
		{"default leaves 1 GiB", "", total, 7 << 30},
		{"absolute", "6GiB", total, 6 << 30},
		{"percent", "50%", total, 4 << 30},
		{"clamped to the card", "12GiB", total, total},
		{"tiny card keeps all", "", 512 << 20, 512 << 20},
		{"invalid counts as unset", "lots", total, 7 << 30},
	}
	for _, tt := range tests {
		c := Default()
		c.Budget = tt.budget
		if got := c.BudgetBytes(tt.total); got != tt.want {
			t.Errorf("%s: BudgetBytes = %s, want %s", tt.name, FormatBytes(got), FormatBytes(tt.want))
		}
	}
	for _, tt := range []struct {
		vram string
		want uint64
	}{{"8GiB", 8 << 30}, {"12G", 12 << 30}, {"80%", 8 << 30}, {"junk", 8 << 30}} {
		c := Default()
		c.VRAM = tt.vram
		if got := c.VRAMBytes(); got != tt.want {
			t.Errorf("VRAMBytes(%q) = %d, want %d", tt.vram, got, tt.want)
		}
	}
}

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	def := Default()
	tests := []struct {
		name    string
		body    string // "" with missing=true: no file
		missing bool
		want    func(c *Config) // applied to Default() to build the expected value
		errs    []string        // substrings, each after "path"
	}{
		{name: "missing file", missing: true},
		{name: "empty file", body: ""},
		{
			name: "full file",
			body: `ollama_url = "http://127.0.0.1:11434"
budget = "6.5GiB"
vram = "12GiB"
max_loaded = 3
context_length = 8192
pinned = ["nomic-embed-text:latest"]
policy = "lru"
notifications = false
listen = "0.0.0.0:11435"
token = "s3cret"
refresh_seconds = 10

[tasks.chat]
avoid = []

[roles.poet]
prefer = ["gemma"]
`,
			want: func(c *Config) {
				c.OllamaURL = "http://127.0.0.1:11434"
				c.Budget = "6.5GiB"
				c.VRAM = "12GiB"
				c.MaxLoaded = 3
				c.ContextLength = 8192
				c.Pinned = []string{"nomic-embed-text:latest"}
				c.Policy = "lru"
				c.Notifications = false
				c.Listen = "0.0.0.0:11435"
				c.Token = "s3cret"
				c.RefreshSeconds = 10
				c.Tasks = map[string]score.Task{"chat": {Avoid: []string{}}}
				c.Roles = map[string]score.Role{"poet": {Prefer: []string{"gemma"}}}
			},
		},
		{
			name: "syntax error gives defaults",
			body: "max_loaded = 3\nbudget = \"7GiB\n",
			errs: []string{":2:"},
		},
		{
			name: "wrong type gives defaults and names the key",
			body: "budget = \"7GiB\"\nmax_loaded = \"two\"\n",
			errs: []string{":2:14: max_loaded: cannot decode TOML string"},
		},
		{
			name: "unknown keys are errors, known keys kept",
			body: "max_loaded = 3\nmax_loded = 4\n\n[tasks.chat]\nprefr = [\"x\"]\n",
			want: func(c *Config) {
				c.MaxLoaded = 3
				c.Tasks = map[string]score.Task{"chat": {}}
			},
			errs: []string{":2:1: max_loded: unknown key", ":5:1: tasks.chat.prefr: unknown key"},
		},
		{
			name: "invalid values keep their defaults",
			body: `max_loaded = -1
budget = "lots"
policy = "fifo"
context_length = 2048
vram = "50%"
listen = "0.0.0.0:11435"
refresh_seconds = 0
pinned = ["a", ""]
ollama_url = "ftp://x"

[tasks.chat]
size_weight = -2
prefer = ["", "ok", " "]
`,
			want: func(c *Config) {
				c.ContextLength = 2048
				c.Pinned = []string{"a"}
			},
			errs: []string{
				":1:1: max_loaded: must be 0 (as many as the budget holds) or more",
				":2:1: budget: ",
				":3:1: policy: unknown policy \"fifo\" (known: lrfu, gdsf, lru)",
				":5:1: vram: ",
				":6:1: listen: ",
				"needs a token",
				":7:1: refresh_seconds: ",
				":8:1: pinned: entry 1 is empty",
				":9:1: ollama_url: ",
				":12:1: tasks.chat.size_weight: must be a finite number",
				":13:1: tasks.chat.prefer[0]: empty term",
				":13:1: tasks.chat.prefer[2]: empty term",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			if tt.missing {
				path = filepath.Join(t.TempDir(), "nope", "config.toml")
			} else {
				path = write(t, tt.body)
			}
			got, err := Load(path)
			want := def
			if tt.want != nil {
				tt.want(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("config =\n%+v\nwant\n%+v", got, want)
			}
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.errs)
			}
			msg := err.Error()
			for _, s := range tt.errs {
				if !strings.Contains(msg, s) {
					t.Errorf("error lacks %q:\n%s", s, msg)
				}
			}
			lines := strings.Split(msg, "\n")
			if len(lines) != len(tt.errs) && tt.name != "invalid values keep their defaults" {
				t.Errorf("%d error lines, want %d:\n%s", len(lines), len(tt.errs), msg)
			}
			for _, line := range lines {
				if !strings.HasPrefix(line, path+":") {
					t.Errorf("error line %q does not start with the path", line)
				}
			}
			if !slices.IsSortedFunc(lines, func(a, b string) int { return lineOf(a, path) - lineOf(b, path) }) {
				t.Errorf("errors not in file order:\n%s", msg)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error is not a *config.Error: %T", err)
			}
			// The result is always usable.
			if verr := got.Validate(); verr != nil {
				t.Errorf("Load returned an invalid config: %v", verr)
			}
		})
	}
}

// lineOf reads the line number from "path:line:col: ...", 0 if none.
func lineOf(msg, path string) int {
	rest := strings.TrimPrefix(msg, path+":")
	n, _ := strconv.Atoi(rest[:max(0, strings.IndexByte(rest, ':'))])
	return n
}

func TestLoadUnknownKeyIsMatchable(t *testing.T) {
	_, err := Load(write(t, "colour = \"blue\"\n"))
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
}

func TestLoadUnreadable(t *testing.T) {
	// A directory where the file should be: not "missing", a real error.
	dir := t.TempDir()
	got, err := Load(dir)
	if err == nil || !reflect.DeepEqual(got, Default()) {
		t.Fatalf("Load(dir) = %+v, %v; want defaults and an error", got, err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		keys   []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"token allows any address", func(c *Config) { c.Listen = "0.0.0.0:1"; c.Token = "t" }, nil},
		{"localhost ok", func(c *Config) { c.Listen = "localhost:8080" }, nil},
		{"ipv6 loopback ok", func(c *Config) { c.Listen = "[::1]:8080" }, nil},
		{"host:port url ok", func(c *Config) { c.OllamaURL = "gpu-box:11434" }, nil},
		{"several at once", func(c *Config) {
			c.MaxLoaded = -1
			c.Policy = ""
			c.Listen = ":11435"
			c.Listen = "127.0.0.1"
			c.Roles = map[string]score.Role{"x": {FitWeight: -1}}
		}, []string{"max_loaded: ", "policy: ", "listen: ", "roles.x.fit_weight: must be"}},
		{"bad port", func(c *Config) { c.Listen = "127.0.0.1:99999" }, []string{"listen: "}},
		{"all interfaces without token", func(c *Config) { c.Listen = ":11435" }, []string{"listen: \":11435\": listening beyond localhost needs a token"}},
		{"empty vram", func(c *Config) { c.VRAM = "" }, []string{"vram: "}},
		{"zero context", func(c *Config) { c.ContextLength = 0 }, []string{"context_length: "}},
	}
	for _, tt := range tests {
		c := Default()
		tt.mutate(&c)
		err := c.Validate()
		if len(tt.keys) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if n := len(strings.Split(err.Error(), "\n")); n != len(tt.keys) {
			t.Errorf("%s: %d problems, want %d:\n%v", tt.name, n, len(tt.keys), err)
		}
		for _, k := range tt.keys {
			if !strings.Contains(err.Error(), k) {
				t.Errorf("%s: error lacks %q:\n%v", tt.name, k, err)
			}
		}
	}
}

func TestSaveRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "vramkeeper")
	path := filepath.Join(dir, "config.toml")
	c := Default()
	c.Budget = "80%"
	c.Token = "s3cret"
	c.Pinned = []string{"qwen2.5-coder:7b"}
	c.Tasks = map[string]score.Task{"chat": {SizeWeight: 0.5, Prefer: []string{"llama"}}}
	c.Roles = map[string]score.Role{"poet": {Prefer: []string{"gemma"}, FitWeight: 2}}
	if err := Save(path, c); err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load after Save: %v", err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("file mode %o, want 600", perm)
		}
	}
	// Overwrite: still one file, no temporaries left behind.
	c.MaxLoaded = 4
	if err := Save(path, c); err != nil {
		t.Fatalf("second Save: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want just config.toml", len(entries))
	}
	if got, _ := Load(path); got.MaxLoaded != 4 {
		t.Errorf("second save not visible: max_loaded %d", got.MaxLoaded)
	}
}

func TestSaveFailsCleanly(t *testing.T) {
	// The parent "directory" is a file: MkdirAll fails, nothing is written.
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Save(filepath.Join(parent, "config.toml"), Default()); err == nil {
		t.Fatal("Save under a file succeeded")
	}
}
