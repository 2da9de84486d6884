package statefile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// state has the shape of the manager's state.json: sections that are
// collections of independent entries.
type state struct {
	Models       map[string]usage  `json:"models"`
	Calibrations map[string]uint64 `json:"calibrations"`
}

type usage struct {
	LastUsed time.Time `json:"last_used"`
	Uses     int       `json:"uses"`
}

// details has the shape of a catalogue entry (catalog.json is a map of
// these, keyed by digest).
type details struct {
	Family  string   `json:"family"`
	Params  uint64   `json:"params"`
	Caps    []string `json:"caps"`
	Context int      `json:"context"`
}

func sampleState() state {
	t0 := time.Date(2026, 11, 30, 9, 15, 0, 123456789, time.UTC)
	return state{
		Models: map[string]usage{
			"qwen2.5-coder:7b":          {LastUsed: t0, Uses: 41},
			"hf.co/user/model:Q4_K_M":   {LastUsed: t0.Add(time.Hour), Uses: 3},
			"nomic-embed-text:latest":   {LastUsed: t0.Add(-time.Minute), Uses: 1200},
			`odd "name" \ with escapes`: {LastUsed: t0, Uses: 7},
		},
		Calibrations: map[string]uint64{
			"sha256:aaaa@4096":  5_368_709_120,
			"sha256:bbbb@8192":  123_456_789_012,
			"sha256:cccc@32768": 4096,
			"sha256:dddd@2048":  17,
		},
	}
}

func sampleCatalog() map[string]details {
	return map[string]details{
		"sha256:1111": {Family: "llama", Params: 8_030_261_248, Caps: []string{"completion", "tools"}, Context: 131072},
		"sha256:2222": {Family: "qwen2", Params: 494_032_768, Caps: []string{"completion"}, Context: 32768},
		"sha256:3333": {Family: "nomic-bert", Params: 137_000_000, Caps: []string{"embedding"}, Context: 2048},
	}
}

// entryEnds maps each entry of the collections in a JSON document to the
// offset just past its value, read with encoding/json independently of
// Salvage. depth is the nesting of the collections (1: the document is the
// collection, 2: collections are the document's fields).
func entryEnds(t *testing.T, data []byte, depth int) map[string]int64 {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	ends := map[string]int64{}
	var walk func(level int, section string)
	walk = func(level int, section string) {
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("want an object at level %d, got %v %v", level, tok, err)
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			key := tok.(string)
			if level < depth {
				walk(level+1, key)
				continue
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatal(err)
			}
			ends[section+"/"+key] = dec.InputOffset()
		}
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
	}
	walk(1, "")
	return ends
}

// TestSalvageEveryCut cuts a file written by Save at every byte and checks
// what a user would lose: every entry written whole before the cut is
// back with its exact value, and nothing comes back that was not written
// (no size with lost digits, no half record).
func TestSalvageEveryCut(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		value any
		depth int
		check func(t *testing.T, cut []byte) (got map[string]any, want map[string]any)
	}{
		{
			name: "state", value: sampleState(), depth: 2,
			check: func(t *testing.T, cut []byte) (map[string]any, map[string]any) {
				orig := sampleState()
				got, _ := Salvage[state](cut)
				return flatten(got.Models, got.Calibrations), flatten(orig.Models, orig.Calibrations)
			},
		},
		{
			name: "catalog", value: sampleCatalog(), depth: 1,
			check: func(t *testing.T, cut []byte) (map[string]any, map[string]any) {
				got, _ := Salvage[map[string]details](cut)
				return flatten1(got), flatten1(sampleCatalog())
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".json")
			if err := Save(path, tc.value); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ends := entryEnds(t, data, tc.depth)
			for cut := 0; cut <= len(data); cut++ {
				got, orig := tc.check(t, data[:cut])
				for k, v := range got {
					if !reflect.DeepEqual(v, orig[k]) {
						t.Fatalf("cut at %d/%d: recovered %s = %#v, written %#v", cut, len(data), k, v, orig[k])
					}
				}
				for k, end := range ends {
					// A value is known whole once the byte after it (a
					// comma or a newline) is there.
					if int64(cut) > end {
						if _, ok := got[k]; !ok {
							t.Fatalf("cut at %d/%d: lost %s, written whole by %d", cut, len(data), k, end)
						}
					}
				}
			}
		})
	}
}

func flatten(m map[string]usage, c map[string]uint64) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out["models/"+k] = v
	}
	for k, v := range c {
		out["calibrations/"+k] = v
	}
	return out
}

func flatten1(m map[string]details) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out["/"+k] = v
	}
	return out
}

func TestSalvageShapes(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		want   state
		wantOK bool
	}{
		{"empty", ``, state{}, false},
		{"garbage", "\x00\x00\x00\x00", state{}, false},
		{"only brace", `{`, state{}, false},
		{"number cut at the end", `{"calibrations":{"a@1":4096,"b@2":40`,
			state{Calibrations: map[string]uint64{"a@1": 4096}}, true},
		{"garbage after a whole entry", "{\"calibrations\":{\"a@1\":4096,\x00\x00",
			state{Calibrations: map[string]uint64{"a@1": 4096}}, true},
		{"half record dropped", `{"models":{"a":{"uses":3},"b":{"uses":4`,
			state{Models: map[string]usage{"a": {Uses: 3}}}, true},
		{"keys in any case, as encoding/json reads them", `{"Calibrations":{"a@1":7,"b@1":8},"MODELS":{"x"`,
			state{Calibrations: map[string]uint64{"a@1": 7, "b@1": 8}}, true},
		{"unknown section skipped whole", `{"newer":{"x":1},"calibrations":{"a@1":5,`,
			state{Calibrations: map[string]uint64{"a@1": 5}}, true},
		{"unknown section cut", `{"calibrations":{"a@1":5},"newer":{"x":[1,2`,
			state{Calibrations: map[string]uint64{"a@1": 5}}, true},
		{"wrong shape keeps the rest", `{"models":[1,2],"calibrations":{"a@1":5},"x":`,
			state{Calibrations: map[string]uint64{"a@1": 5}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Salvage[state]([]byte(tc.in))
			if ok != tc.wantOK || !reflect.DeepEqual(normalize(got), normalize(tc.want)) {
				t.Fatalf("Salvage(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// normalize treats a nil and an empty map alike.
func normalize(s state) state {
	if len(s.Models) == 0 {
		s.Models = nil
	}
	if len(s.Calibrations) == 0 {
		s.Calibrations = nil
	}
	return s
}

func TestLoad(t *testing.T) {
	full := sampleState()
	good, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		content   []byte // nil: no file
		wantErr   bool
		wantAside bool
		wantCalib int
	}{
		{name: "missing file is a first run"},
		{name: "whole file", content: good, wantCalib: len(full.Calibrations)},
		{name: "cut file keeps whole entries and is set aside", content: good[:bytes.Index(good, []byte(`"sha256:cccc`))],
			wantErr: true, wantAside: true, wantCalib: 2},
		{name: "empty file after a crash", content: []byte{}, wantErr: true, wantAside: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			if tc.content != nil {
				if err := os.WriteFile(path, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Load[state](path)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Load: err = %v, want error %v", err, tc.wantErr)
			}
			if len(got.Calibrations) != tc.wantCalib {
				t.Errorf("kept %d measured sizes, want %d", len(got.Calibrations), tc.wantCalib)
			}
			aside, _ := filepath.Glob(path + ".damaged-*")
			if tc.wantAside {
				var de *DamagedError
				if !errors.As(err, &de) || len(aside) != 1 || de.SetAside != aside[0] {
					t.Fatalf("want the damaged file set aside and named in the error; err = %v, files %v", err, aside)
				}
				if !strings.Contains(err.Error(), aside[0]) || !strings.Contains(err.Error(), path) {
					t.Errorf("message %q should name the file and where it went", err)
				}
				kept, _ := os.ReadFile(aside[0])
				if !bytes.Equal(kept, tc.content) {
					t.Errorf("set-aside file differs from the damaged one")
				}
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("damaged file still at %s", path)
				}
			} else if len(aside) != 0 {
				t.Errorf("nothing should be set aside, found %v", aside)
			}
		})
	}
}

func TestLoadUnreadableLeavesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := os.Mkdir(path, 0o700); err != nil { // a folder where the file should be
		t.Fatal(err)
	}
	if _, err := Load[state](path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("want a read error naming %s, got %v", path, err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Fatal("an unreadable file must be left where it is")
	}
}

func TestSaveRoundTripAndMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "state")
	path := filepath.Join(dir, "state.json")
	want := sampleState()
	for i := range 3 { // overwrite: each save replaces the whole file
		want.Calibrations[fmt.Sprintf("sha256:%d@4096", i)] = uint64(i)
		if err := Save(path, want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Load[state](path)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got.Calibrations, want.Calibrations) || len(got.Models) != len(want.Models) {
		t.Fatalf("round trip: got %+v", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Windows keeps only a read-only bit (the file is private through
	// its folder's ACL): modes read back 0666.
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Errorf("temp files left behind: %v", left)
	}
}

func TestSaveUnwritable(t *testing.T) {
	// A file where the folder should be fails for root too, as a full or
	// read-only disk would.
	dir := t.TempDir()
	blocker := filepath.Join(dir, "state")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "state.json")
	if err := Save(path, sampleState()); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("want an error naming %s, got %v", path, err)
	}
}
