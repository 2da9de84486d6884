package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// event has the shape of the manager's history events.
type event struct {
	Time  time.Time `json:"time"`
	Kind  string    `json:"kind"`
	Model string    `json:"model,omitempty"`
	Seq   int       `json:"seq"`
	Error string    `json:"error,omitempty"`
}

func failed(i int) event {
	return event{
		Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		Kind: "load_failed", Model: "hf.co/someone/some-model:Q4_K_M", Seq: i,
		Error: `loading hf.co/someone/some-model:Q4_K_M: ollama: model requires more system memory (12.3 GiB) than is available (7.9 GiB)`,
	}
}

func seqs(evs []event) []int {
	out := make([]int, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

// countdown is n-1 … n-k: what Newest must return after n appends.
func countdown(n, k int) []int {
	out := make([]int, 0, k)
	for i := n - 1; i >= n-k && i >= 0; i-- {
		out = append(out, i)
	}
	return out
}

func diskBytes(t *testing.T, path string) int64 {
	t.Helper()
	files, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	return total
}

// TestStaysUnderCap: a failed request per second for more than a day of
// the defaults' worth, and the history still fits its cap and reads back
// the newest events in order.
func TestStaysUnderCap(t *testing.T) {
	cases := []struct {
		name    string
		opt     Options
		appends int
	}{
		{"defaults, 100,000 failed requests", Options{}, 100_000},
		{"small files, many rotations", Options{MaxBytes: 4 << 10, Backups: 2}, 5_000},
		{"no backups", Options{MaxBytes: 4 << 10, Backups: -1}, 1_000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.jsonl")
			j := Open[event](path, tc.opt)
			for i := range tc.appends {
				if err := j.Append(failed(i)); err != nil {
					t.Fatal(err)
				}
			}
			capBytes := j.opt.MaxBytes * int64(j.opt.Backups+1)
			if got := diskBytes(t, path); got > capBytes {
				t.Fatalf("journal holds %d bytes on disk, cap %d", got, capBytes)
			}
			got, skipped, err := j.Newest(200)
			if err != nil || skipped != 0 {
				t.Fatalf("Newest: %v, %d skipped", err, skipped)
			}
			// The full rotated files are kept whole: at least that many
			// events come back, the newest first, none missing.
			perFile := int(j.opt.MaxBytes-1) / (len(mustLine(failed(0))) + 1)
			if least := min(200, perFile*j.opt.Backups); len(got) < least {
				t.Fatalf("read %d events back, want at least %d", len(got), least)
			}
			if want := countdown(tc.appends, len(got)); !slices.Equal(seqs(got), want) {
				t.Fatalf("newest events: got %v…, want %v…", head(seqs(got)), head(want))
			}
		})
	}
}

func head(s []int) []int { return s[:min(len(s), 5)] }

func mustLine(e event) string {
	b, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestCutAtEveryByte: a crash leaves history.jsonl cut at any byte. The
// app reads every whole line, skips the half one, and the next event it
// writes starts on a fresh line, so the half line never swallows it.
func TestCutAtEveryByte(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	j := Open[event](src, Options{})
	for i := range 3 {
		if err := j.Append(failed(i)); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	lineEnds := []int{} // offsets just past each '\n'
	for i, c := range data {
		if c == '\n' {
			lineEnds = append(lineEnds, i+1)
		}
	}
	path := filepath.Join(dir, "history.jsonl")
	for cut := 0; cut <= len(data); cut++ {
		if err := os.WriteFile(path, data[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		whole := 0
		for _, e := range lineEnds {
			if e-1 <= cut { // the line's closing brace is there
				whole++
			}
		}
		j := Open[event](path, Options{})
		got, _, err := j.Newest(100)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seqs(got), countdown(whole, whole)) {
			t.Fatalf("cut at %d: read %v, want %v", cut, seqs(got), countdown(whole, whole))
		}
		if err := j.Append(failed(99)); err != nil {
			t.Fatal(err)
		}
		got, _, err = j.Newest(100)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]int{99}, countdown(whole, whole)...)
		if !slices.Equal(seqs(got), want) {
			t.Fatalf("cut at %d, then one append: read %v, want %v", cut, seqs(got), want)
		}
	}
}

// recorder is a slog handler that keeps each message.
type recorder struct {
	mu   *sync.Mutex
	msgs *[]string
}

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.msgs = append(*r.msgs, rec.Message)
	return nil
}
func (r recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r recorder) WithGroup(string) slog.Handler      { return r }

func newLog() (*slog.Logger, *[]string) {
	var msgs []string
	return slog.New(recorder{&sync.Mutex{}, &msgs}), &msgs
}

// TestFullDiskWarnsOnce: a full or read-only disk is one warning, not one
// per event; appends keep failing cleanly and work again when it clears.
func TestFullDiskWarnsOnce(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) (path string, heal func())
	}{
		{"full disk (/dev/full)", func(t *testing.T) (string, func()) {
			if _, err := os.Stat("/dev/full"); err != nil {
				t.Skip("no /dev/full")
			}
			return "/dev/full", nil
		}},
		{"folder cannot be made", func(t *testing.T) (string, func()) {
			dir := t.TempDir()
			blocker := filepath.Join(dir, "state")
			if err := os.WriteFile(blocker, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(blocker, "history.jsonl"), func() {
				if err := os.Remove(blocker); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, heal := tc.setup(t)
			log, msgs := newLog()
			j := Open[event](path, Options{Log: log})
			for i := range 50 {
				if err := j.Append(failed(i)); err == nil {
					t.Fatalf("append %d on a broken disk succeeded", i)
				} else if !strings.Contains(err.Error(), path) {
					t.Fatalf("error %q should name %s", err, path)
				}
			}
			if n := count(*msgs, "history is not being saved"); n != 1 {
				t.Fatalf("%d warnings for 50 failed appends, want 1: %q", n, *msgs)
			}
			if heal == nil {
				return
			}
			heal()
			if err := j.Append(failed(50)); err != nil {
				t.Fatalf("append after the disk healed: %v", err)
			}
			if count(*msgs, "history is being saved again") != 1 {
				t.Fatalf("want one notice that saving resumed: %q", *msgs)
			}
			got, _, _ := j.Newest(10)
			if !slices.Equal(seqs(got), []int{50}) {
				t.Fatalf("after healing: %v", seqs(got))
			}
		})
	}
}

func count(msgs []string, sub string) int {
	n := 0
	for _, m := range msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

func TestOverlongForeignLineSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	j := Open[event](path, Options{MaxBytes: 1 << 10})
	if err := j.Append(failed(1)); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Something else wrote 300 KiB without a newline, then a good line.
	_, _ = f.Write(bytes.Repeat([]byte("x"), 300<<10))
	_, _ = f.WriteString("\n" + mustLine(failed(2)) + "\n")
	f.Close()
	got, skipped, err := j.Newest(10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqs(got), []int{2, 1}) || skipped != 1 {
		t.Fatalf("got %v, %d skipped; want [2 1], 1 skipped", seqs(got), skipped)
	}
}

func TestRecordOverCapRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	j := Open[event](path, Options{MaxBytes: 64})
	if err := j.Append(failed(1)); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("want a refusal, got %v", err)
	}
}
