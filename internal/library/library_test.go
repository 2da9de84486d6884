package library

import (
	"testing"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// Every model of the list is estimated, a little above its download (the
// KV cache, the compute graph and the runtime come on top), larger models
// need more, and a longer context more still.
func TestNeed(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range Models() {
		if seen[m.Name] {
			t.Errorf("%s listed twice", m.Name)
		}
		seen[m.Name] = true
		need, err := m.Need(4096, estimate.ParseGeneration("0.17.4"))
		if err != nil {
			t.Fatal(err)
		}
		if need < m.DownloadBytes*9/10 || need > m.DownloadBytes*2+2<<30 {
			t.Errorf("%s: needs %d bytes for a %d-byte download", m.Name, need, m.DownloadBytes)
		}
		longer, err := m.Need(16384, estimate.ParseGeneration("0.17.4"))
		if err != nil {
			t.Fatal(err)
		}
		if m.For != "embedding" && longer <= need {
			t.Errorf("%s: %d bytes at 16384 tokens, %d at 4096", m.Name, longer, need)
		}
	}
	byName := map[string]uint64{}
	for _, m := range Models() {
		byName[m.Name], _ = m.Need(4096, 0)
	}
	for _, pair := range [][2]string{{"qwen2.5:0.5b", "llama3.2:1b"}, {"llama3.2:3b", "qwen2.5:7b"}, {"qwen2.5-coder:7b", "qwen2.5-coder:14b"}} {
		if byName[pair[0]] >= byName[pair[1]] {
			t.Errorf("%s needs %d, not less than %s's %d", pair[0], byName[pair[0]], pair[1], byName[pair[1]])
		}
	}
}
