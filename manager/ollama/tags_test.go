package ollama

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeTags: any body either decodes or errors; a decoded entry always
// has a name and no negative number.
func FuzzDecodeTags(f *testing.F) {
	for _, p := range []string{"v0.34.2/tags.json", "v0.17.4/tags.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeTags(body)
		if err != nil {
			return // refused with an error, never a panic
		}
		for _, m := range got {
			if m.Name == "" {
				t.Errorf("entry without a name: %+v", m)
			}
			if m.ContextLength < 0 {
				t.Errorf("negative context length: %+v", m)
			}
			for _, c := range m.Capabilities {
				if c == "" {
					t.Errorf("empty capability: %+v", m)
				}
			}
		}
	})
}
