package timeline

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

const gib = 1 << 30

var t0 = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func sample(sec int, models map[string]uint64) Sample {
	return Sample{Time: at(sec), Models: models, Others: gib, Budget: 7 * gib, Total: 8 * gib, Source: "nvml"}
}

func times(w Window) []int {
	var out []int
	for _, s := range w.Samples {
		out = append(out, int(s.Time.Sub(t0)/time.Second))
	}
	return out
}

func TestRingBounds(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		span     time.Duration
		add      []int // sample times in seconds after t0, in the order added
		want     []int
	}{
		{"keeps all within bounds", 10, time.Hour, []int{0, 2, 4}, []int{0, 2, 4}},
		{"capacity drops the oldest", 3, time.Hour, []int{0, 2, 4, 6, 8}, []int{4, 6, 8}},
		{"span drops what is older than an hour before the newest", 100, time.Hour, []int{0, 1800, 3599, 3600, 3601, 5400}, []int{1800, 3599, 3600, 3601, 5400}},
		{"out of order is kept in time order", 10, time.Hour, []int{4, 0, 8, 2, 6}, []int{0, 2, 4, 6, 8}},
		{"a late sample older than every kept one is dropped when full", 3, time.Hour, []int{4, 6, 8, 0}, []int{4, 6, 8}},
		{"a sample at a kept time replaces it", 10, time.Hour, []int{0, 2, 2, 4}, []int{0, 2, 4}},
		// An hour at 2 s is 1800 samples: 8000-3598 … 8000.
		{"one hour at a 2 s poll by default", 0, 0, seq(0, 8000, 2), seq(8000-2*(DefaultCapacity-1), 8000, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(tt.capacity, tt.span)
			for _, s := range tt.add {
				if err := r.Add(sample(s, nil)); err != nil {
					t.Fatal(err)
				}
			}
			if got := times(r.Since(time.Time{})); !slices.Equal(got, tt.want) {
				t.Errorf("kept %d samples %s, want %d %s", len(got), ends(got), len(tt.want), ends(tt.want))
			}
		})
	}
}

// ends shows a list of times short: its first and last three.
func ends(s []int) string {
	if len(s) <= 6 {
		return fmt.Sprint(s)
	}
	return fmt.Sprint(s[:3], " … ", s[len(s)-3:])
}

// seq is from, from+step, ... up to and including to.
func seq(from, to, step int) []int {
	var out []int
	for i := from; i <= to; i += step {
		out = append(out, i)
	}
	return out
}

func TestSinceIsStrictlyAfter(t *testing.T) {
	r := New(0, 0)
	for _, s := range []int{0, 2, 4, 6} {
		if err := r.Add(sample(s, nil)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []Mark{{Time: at(1), Kind: MarkLoad, Model: "a"}, {Time: at(4), Kind: MarkEviction, Model: "a"}, {Time: at(5), Kind: MarkYield}} {
		if err := r.Mark(m); err != nil {
			t.Fatal(err)
		}
	}
	w := r.Since(at(4))
	if got := times(w); !slices.Equal(got, []int{6}) {
		t.Errorf("samples after 4 s: %v, want [6]", got)
	}
	if len(w.Marks) != 1 || w.Marks[0].Kind != MarkYield {
		t.Errorf("marks after 4 s: %+v, want the yield at 5 s", w.Marks)
	}
	if got := r.Since(at(6)); got.Samples == nil || len(got.Samples) != 0 || got.Marks == nil {
		t.Errorf("nothing after the newest: %+v, want empty non-nil slices", got)
	}
}

func TestSinceReturnsCopies(t *testing.T) {
	r := New(0, 0)
	in := map[string]uint64{"qwen2.5:7b": 4 * gib}
	if err := r.Add(sample(0, in)); err != nil {
		t.Fatal(err)
	}
	in["qwen2.5:7b"] = 1 // the caller reuses its map
	w := r.Since(time.Time{})
	w.Samples[0].Models["qwen2.5:7b"] = 2 // a reader scribbles on its copy
	if got := r.Since(time.Time{}).Samples[0].Models["qwen2.5:7b"]; got != 4*gib {
		t.Errorf("kept %d bytes, want %d: the ring shares a map with a caller", got, 4*gib)
	}
}

func TestBadInput(t *testing.T) {
	r := New(0, 0)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"sample without a time", r.Add(Sample{Budget: 7}), "without a time"},
		{"mark without a time", r.Mark(Mark{Kind: MarkLoad, Model: "a:1b"}), `load mark for "a:1b" without a time`},
		{"unknown mark kind", r.Mark(Mark{Time: t0, Kind: "exploded", Model: "a:1b"}), `unknown mark kind "exploded"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", tt.err, tt.want)
			}
		})
	}
	if w := r.Since(time.Time{}); len(w.Samples)+len(w.Marks) != 0 {
		t.Errorf("bad input was kept: %+v", w)
	}
}

func TestMergeOverlappingReads(t *testing.T) {
	// The window reads the tray's timeline again from a little before the
	// newest entry it has: the overlap must not repeat marks or samples.
	src := New(0, 0)
	dst := New(0, 0)
	for sec := 0; sec <= 20; sec += 2 {
		if err := src.Add(sample(sec, map[string]uint64{"a": uint64(sec)})); err != nil {
			t.Fatal(err)
		}
		if sec%10 == 0 {
			if err := src.Mark(Mark{Time: at(sec), Kind: MarkLoad, Model: "a"}); err != nil {
				t.Fatal(err)
			}
		}
		if sec == 10 {
			if err := dst.Merge(src.Since(time.Time{})); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := dst.Merge(src.Since(at(6))); err != nil {
		t.Fatal(err)
	}
	got, want := dst.Since(time.Time{}), src.Since(time.Time{})
	if !slices.Equal(times(got), times(want)) || !slices.Equal(got.Marks, want.Marks) {
		t.Errorf("merged %v marks %v, want %v marks %v", times(got), got.Marks, times(want), want.Marks)
	}
}

func TestWindowJSON(t *testing.T) {
	b, err := json.Marshal(New(0, 0).Since(time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"samples":[],"marks":[]}` {
		t.Errorf("empty window = %s", b)
	}
	w := Window{
		Samples: []Sample{sample(0, map[string]uint64{"qwen2.5:7b": 4 * gib})},
		Marks:   []Mark{{Time: at(1), Kind: MarkEviction, Model: "llama3.2:3b"}},
	}
	b, err = json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var back Window
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Samples[0].Ours() != 4*gib || back.Marks[0] != w.Marks[0] || back.Samples[0].Source != "nvml" {
		t.Errorf("round trip %s gave %+v", b, back)
	}
}

func TestWindowModelsAndLatest(t *testing.T) {
	w := Window{
		Samples: []Sample{sample(0, map[string]uint64{"b": 1}), sample(2, map[string]uint64{"a": 1, "b": 2}), sample(4, nil)},
		Marks:   []Mark{{Time: at(3), Kind: MarkUnload, Model: "a"}},
	}
	if got := w.Models(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Models() = %v", got)
	}
	if got := w.Latest(); !got.Equal(at(4)) {
		t.Errorf("Latest() = %v, want the last sample's time", got)
	}
	w.Marks = append(w.Marks, Mark{Time: at(9), Kind: MarkYield})
	if got := w.Latest(); !got.Equal(at(9)) {
		t.Errorf("Latest() = %v, want the last mark's time", got)
	}
	if got := (Window{}).Latest(); !got.IsZero() {
		t.Errorf("empty Latest() = %v", got)
	}
}

// FuzzMerge feeds the window arbitrary JSON as if it came from the tray's
// API: a bad window is an error or is kept in part, never a panic, and
// what is kept stays ordered and bounded.
func FuzzMerge(f *testing.F) {
	f.Add([]byte(`{"samples":[{"time":"2026-01-02T12:00:00Z","models":{"a":1},"others_bytes":2,"budget_bytes":3,"total_bytes":4}],"marks":[{"time":"2026-01-02T12:00:01Z","kind":"load","model":"a"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var w Window
		if json.Unmarshal(b, &w) != nil {
			return
		}
		r := New(8, time.Minute)
		_ = r.Merge(w)
		_ = r.Merge(w)
		got := r.Since(time.Time{})
		if len(got.Samples) > 8 || len(got.Marks) > 8 {
			t.Fatalf("kept %d samples, %d marks, capacity 8", len(got.Samples), len(got.Marks))
		}
		for i := 1; i < len(got.Samples); i++ {
			if got.Samples[i].Time.Before(got.Samples[i-1].Time) {
				t.Fatalf("samples out of order: %v", got.Samples)
			}
		}
		if l := got.Latest(); len(got.Samples) > 0 && got.Samples[0].Time.Before(l.Add(-time.Minute)) {
			t.Fatalf("kept a sample from %v, over a minute before %v", got.Samples[0].Time, l)
		}
	})
}
