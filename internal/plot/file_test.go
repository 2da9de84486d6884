package plot

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		path  string
		check func(t *testing.T, b []byte)
		err   string
	}{
		{"svg", filepath.Join(dir, "hour.svg"), func(t *testing.T, b []byte) {
			if !bytes.HasPrefix(b, []byte("<svg ")) || !bytes.Contains(b, []byte(`class="area" data-key="qwen2.5-coder:7b"`)) {
				t.Errorf("not the chart as SVG: %.80s…", b)
			}
		}, ""},
		{"png, any case", filepath.Join(dir, "hour.PNG"), func(t *testing.T, b []byte) {
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if img.Bounds().Dx() != DefaultWidth || img.Bounds().Dy() != DefaultHeight {
				t.Errorf("PNG is %v, want %dx%d", img.Bounds(), DefaultWidth, DefaultHeight)
			}
		}, ""},
		{"unknown extension", filepath.Join(dir, "hour.jpg"), nil, `hour.jpg: unknown format ".jpg": name the file .svg or .png`},
		{"no extension", filepath.Join(dir, "hour"), nil, "name the file .svg or .png"},
		{"missing folder", filepath.Join(dir, "nope", "hour.svg"), nil, filepath.Join(dir, "nope", "hour.svg")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteFile(tt.path, anHour(), Options{Location: time.UTC})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				if _, serr := os.Stat(tt.path); serr == nil {
					t.Errorf("%s was written despite the error", tt.path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, b)
			// Windows keeps only a read-only bit: modes read back 0666.
			if st, _ := os.Stat(tt.path); runtime.GOOS != "windows" && st.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want 0644", st.Mode().Perm())
			}
		})
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestPalette(t *testing.T) {
	names := []string{"qwen2.5-coder:7b", "llama3.2:3b", "gemma3:4b", "phi4-mini:3.8b", "mistral:7b",
		"deepseek-r1:8b", "granite3.3:8b", "smollm2:1.7b", "qwen3:4b", "hf.co/user/model:Q4_K_M"}
	p := NewPalette()
	first := p.Colors(names)
	seen := map[string]string{}
	for _, n := range names {
		c := first[n]
		if other, dup := seen[hex(c)]; dup {
			t.Errorf("%s and %s share %s: ten models, ten colours", n, other, hex(c))
		}
		seen[hex(c)] = n
	}
	// The same name keeps its colour, whatever comes after it.
	p.Color("an-eleventh:1b")
	for _, n := range names {
		if got := p.Color(n); got != first[n] {
			t.Errorf("%s changed colour from %s to %s", n, hex(first[n]), hex(got))
		}
	}
	// Another palette fed the same names, in another order, agrees.
	rev := make([]string, len(names))
	for i, n := range names {
		rev[len(names)-1-i] = n
	}
	again := NewPalette().Colors(rev)
	for _, n := range names {
		if again[n] != first[n] {
			t.Errorf("%s: %s in one palette, %s in another", n, hex(first[n]), hex(again[n]))
		}
	}
	// A lone model gets its hash's colour, in any palette.
	if a, b := NewPalette().Color("mistral:7b"), NewPalette().Color("mistral:7b"); a != b {
		t.Errorf("mistral:7b is %s and %s in two fresh palettes", hex(a), hex(b))
	}
}
