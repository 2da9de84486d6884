package cli_test

import (
	"slices"
	"testing"

	"github.com/vramkeeper/vramkeeper/internal/cli"
)

func TestWindowArgs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      cli.Flags
		config string
		listen string
		want   []string
	}{
		{"defaults", cli.Flags{}, "/c.toml", "127.0.0.1:11435",
			[]string{"window", "--config", "/c.toml", "--listen", "127.0.0.1:11435"}},
		{"every setting", cli.Flags{Ollama: "http://o:1", Budget: "768MiB", VRAM: "1GiB", MaxLoaded: 1, Ctx: 1024,
			StateDir: "/s", Verbose: true, Hidden: true, JSON: true}, "/c.toml", "127.0.0.1:9",
			[]string{"window", "--ollama", "http://o:1", "--budget", "768MiB", "--vram", "1GiB", "--max-loaded", "1",
				"--ctx", "1024", "--config", "/c.toml", "--state-dir", "/s", "--listen", "127.0.0.1:9", "-v"}},
	} {
		if got := cli.WindowArgs(tc.f, tc.config, tc.listen); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
