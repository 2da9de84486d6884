package gpu

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/card"
)

// Compile-time check: the probe is what the manager consumes.
var _ manager.GPU = (*Probe)(nil)

const (
	gib      = 1 << 30
	fallback = 8 * gib
)

// fakeDriver scripts NVML's answers (an nvmlLib).
type fakeDriver struct {
	initErrs  []error // consumed one per Init; nil entry or empty = success
	devs      []device
	devErr    map[int]error
	procs     map[int][]process
	procErr   map[int]error
	inits     int
	shutdowns int
	up        bool
}

func (f *fakeDriver) Init() error {
	f.inits++
	if len(f.initErrs) > 0 {
		err := f.initErrs[0]
		f.initErrs = f.initErrs[1:]
		if err != nil {
			return err
		}
	}
	f.up = true
	return nil
}

func (f *fakeDriver) Shutdown() error { f.shutdowns++; f.up = false; return nil }

func (f *fakeDriver) Devices() int {
	if !f.up {
		return 0
	}
	return len(f.devs)
}

func (f *fakeDriver) Device(i int) (device, error) {
	if err := f.devErr[i]; err != nil {
		return device{}, err
	}
	return f.devs[i], nil
}

func (f *fakeDriver) Processes(i int) ([]process, error) {
	if err := f.procErr[i]; err != nil {
		return nil, err
	}
	return f.procs[i], nil
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// logBuf counts log lines by level.
type logBuf struct{ bytes.Buffer }

func (b *logBuf) count(level string) int { return strings.Count(b.String(), "level="+level) }

func newTestProbe(drv nvmlLib, more ...driver) (*Probe, *clock, *logBuf) {
	c := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	var buf logBuf
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return newProbe(append([]driver{nvmlDriver{lib: drv}}, more...), fallback, log, c.now), c, &buf
}

// bare is a reading without its cards, comparable.
func bare(v card.VRAM) card.VRAM {
	v.Cards = nil
	return v
}

func TestReadNVML(t *testing.T) {
	rtx := device{Name: "NVIDIA GeForce RTX 3070", Total: 8 * gib, Used: 2 * gib, Free: 6 * gib, Reserved: 300 << 20}
	a4000 := device{Name: "NVIDIA RTX A4000", Total: 16 * gib, Used: 1 * gib, Free: 15 * gib}
	tests := []struct {
		name     string
		devs     []device
		want     card.VRAM
		wantNote []string
	}{
		{
			name:     "one GPU",
			devs:     []device{rtx},
			want:     card.VRAM{Source: card.SourceNVML, Name: rtx.Name, Total: 8 * gib, Used: 2 * gib, Free: 6 * gib},
			wantNote: []string{"1 GPU", "300 MiB reserved by the driver"},
		},
		{
			name:     "two GPUs summed",
			devs:     []device{rtx, a4000},
			want:     card.VRAM{Source: card.SourceNVML, Name: rtx.Name + ", " + a4000.Name, Total: 24 * gib, Used: 3 * gib, Free: 21 * gib},
			wantNote: []string{"2 GPUs summed"},
		},
		{
			name:     "identical GPUs folded in the name",
			devs:     []device{a4000, a4000},
			want:     card.VRAM{Source: card.SourceNVML, Name: "2× " + a4000.Name, Total: 32 * gib, Used: 2 * gib, Free: 30 * gib},
			wantNote: []string{"2 GPUs summed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drv := &fakeDriver{devs: tt.devs}
			p, _, _ := newTestProbe(drv)
			got, err := p.Read(context.Background())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			note := got.Note
			got.Note = ""
			if len(got.Cards) != len(tt.devs) {
				t.Errorf("%d cards, want %d", len(got.Cards), len(tt.devs))
			}
			if got := bare(got); !got.Equal(tt.want) {
				t.Errorf("Read = %+v, want %+v", got, tt.want)
			}
			for _, s := range tt.wantNote {
				if !strings.Contains(note, s) {
					t.Errorf("note %q lacks %q", note, s)
				}
			}
			if _, err := p.Read(context.Background()); err != nil || drv.inits != 1 {
				t.Errorf("second Read: err %v, %d inits; want lazy init once", err, drv.inits)
			}
			if err := p.Close(); err != nil || drv.shutdowns != 1 {
				t.Errorf("Close: %v, %d shutdowns", err, drv.shutdowns)
			}
		})
	}
}

func TestFallback(t *testing.T) {
	tests := []struct {
		name     string
		initErr  error
		devs     []device
		wantNote string
	}{
		{"library missing", errNoLibrary, nil, "NVML unavailable: libnvidia-ml.so not found; using --vram 8.0 GiB"},
		{"driver not loaded", errors.New("NVIDIA driver not loaded: ERROR_DRIVER_NOT_LOADED"), nil, "NVML unavailable: NVIDIA driver not loaded"},
		{"no GPU", nil, nil, "NVML unavailable: no NVIDIA GPU found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drv := &fakeDriver{initErrs: []error{tt.initErr}, devs: tt.devs}
			p, clk, logs := newTestProbe(drv)
			for i := range 5 {
				got, err := p.Read(context.Background())
				if err != nil {
					t.Fatalf("Read %d: %v (unavailable NVML is not an error)", i, err)
				}
				want := card.VRAM{Source: card.SourceEstimated, Total: fallback, Note: got.Note}
				if !bare(got).Equal(want) || len(got.Cards) != 0 || !strings.HasPrefix(got.Note, tt.wantNote) {
					t.Fatalf("Read %d = %+v, want %+v with note %q", i, got, want, tt.wantNote)
				}
				clk.t = clk.t.Add(10 * time.Second)
			}
			if drv.inits != 1 {
				t.Errorf("%d inits within a minute, want 1", drv.inits)
			}
			if n := logs.count("WARN"); n != 1 {
				t.Errorf("%d warnings for 5 reads, want 1:\n%s", n, logs)
			}
			if _, err := p.Processes(context.Background()); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Processes err = %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestRetry(t *testing.T) {
	gpu := device{Name: "GPU", Total: 8 * gib, Used: gib, Free: 7 * gib}
	// Fails twice (once per minute), then the driver comes back.
	drv := &fakeDriver{initErrs: []error{errNoLibrary, errNoLibrary}, devs: []device{gpu}}
	p, clk, logs := newTestProbe(drv)
	steps := []struct {
		advance   time.Duration
		want      string
		wantInits int
	}{
		{0, card.SourceEstimated, 1},
		{30 * time.Second, card.SourceEstimated, 1}, // too soon to retry
		{31 * time.Second, card.SourceEstimated, 2}, // retried, still missing
		{59 * time.Second, card.SourceEstimated, 2},
		{time.Second, card.SourceNVML, 3}, // back
		{time.Hour, card.SourceNVML, 3},   // stays up, no re-init
	}
	for i, s := range steps {
		clk.t = clk.t.Add(s.advance)
		got, err := p.Read(context.Background())
		if err != nil || got.Source != s.want || drv.inits != s.wantInits {
			t.Fatalf("step %d: source %q err %v inits %d; want %q, %d inits", i, got.Source, err, drv.inits, s.want, s.wantInits)
		}
	}
	if w, in := logs.count("WARN"), logs.count("INFO"); w != 1 || in != 1 {
		t.Errorf("logged %d warnings and %d infos, want 1 each (unavailable, then ready):\n%s", w, in, logs)
	}
}

func TestReadFailureFallsBackAndRetries(t *testing.T) {
	gpu := device{Name: "GPU", Total: 8 * gib, Used: gib, Free: 7 * gib}
	drv := &fakeDriver{devs: []device{gpu, gpu}, devErr: map[int]error{}}
	p, clk, _ := newTestProbe(drv)
	if v, err := p.Read(context.Background()); err != nil || v.Source != card.SourceNVML {
		t.Fatalf("first Read = %+v, %v", v, err)
	}
	lost := errors.New("ERROR_GPU_IS_LOST")
	drv.devErr[1] = lost
	v, err := p.Read(context.Background())
	if !errors.Is(err, lost) || !strings.Contains(err.Error(), "GPU 1") {
		t.Fatalf("err = %v, want the wrapped device error naming GPU 1", err)
	}
	if v.Source != card.SourceEstimated || v.Total != fallback || !strings.Contains(v.Note, "GPU_IS_LOST") {
		t.Errorf("reading after failure = %+v, want the fallback with the reason", v)
	}
	if drv.shutdowns != 1 {
		t.Errorf("%d shutdowns after a failure, want 1", drv.shutdowns)
	}
	// Within the minute: fallback, no error, no new init.
	if v, err := p.Read(context.Background()); err != nil || v.Source != card.SourceEstimated || drv.inits != 1 {
		t.Errorf("Read within the minute = %+v, %v, %d inits", v, err, drv.inits)
	}
	delete(drv.devErr, 1)
	clk.t = clk.t.Add(retryEvery)
	if v, err := p.Read(context.Background()); err != nil || v.Source != card.SourceNVML || v.Total != 16*gib {
		t.Errorf("Read after recovery = %+v, %v", v, err)
	}
}

func TestProcesses(t *testing.T) {
	gpu := device{Name: "GPU", Total: 8 * gib}
	tests := []struct {
		name    string
		procs   map[int][]process
		procErr map[int]error
		want    map[uint32]uint64
		wantErr error
	}{
		{
			name:  "summed per PID across GPUs",
			procs: map[int][]process{0: {{PID: 100, Used: gib}, {PID: 200, Used: 2 * gib}}, 1: {{PID: 100, Used: gib}}},
			want:  map[uint32]uint64{100: 2 * gib, 200: 2 * gib},
		},
		{
			name:  "unknown amount counts as zero",
			procs: map[int][]process{0: {{PID: 7, Used: math.MaxUint64}}},
			want:  map[uint32]uint64{7: 0},
		},
		{
			name:    "one GPU unsupported, the other reports",
			procs:   map[int][]process{1: {{PID: 5, Used: gib}}},
			procErr: map[int]error{0: ErrNotSupported},
			want:    map[uint32]uint64{5: gib},
		},
		{
			name:    "all unsupported",
			procErr: map[int]error{0: ErrNotSupported, 1: ErrNotSupported},
			wantErr: ErrNotSupported,
		},
		{
			name:    "query error",
			procErr: map[int]error{1: errors.New("ERROR_UNKNOWN")},
			wantErr: errors.New("processes on GPU 1: ERROR_UNKNOWN"),
		},
		{
			name: "none running",
			want: map[uint32]uint64{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, _ := newTestProbe(&fakeDriver{devs: []device{gpu, gpu}, procs: tt.procs, procErr: tt.procErr})
			got, err := p.Processes(context.Background())
			if tt.wantErr != nil {
				if err == nil || (!errors.Is(err, tt.wantErr) && err.Error() != tt.wantErr.Error()) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Processes: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for pid, b := range tt.want {
				if got[pid] != b {
					t.Errorf("pid %d: %d bytes, want %d", pid, got[pid], b)
				}
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	drv := &fakeDriver{devs: []device{{Total: gib}}}
	p, _, _ := newTestProbe(drv)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v, err := p.Read(ctx)
	if !errors.Is(err, context.Canceled) || v.Total != fallback || drv.inits != 0 {
		t.Errorf("Read(cancelled) = %+v, %v, %d inits", v, err, drv.inits)
	}
	if _, err := p.Processes(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Processes(cancelled) err = %v", err)
	}
}

func TestClose(t *testing.T) {
	drv := &fakeDriver{devs: []device{{Total: gib}}}
	p, _, _ := newTestProbe(drv)
	if err := p.Close(); err != nil || drv.shutdowns != 0 {
		t.Fatalf("Close before use: %v, %d shutdowns", err, drv.shutdowns)
	}
	v, err := p.Read(context.Background())
	if err != nil || v.Source != card.SourceEstimated || drv.inits != 0 {
		t.Errorf("Read after Close = %+v, %v, %d inits; want fallback without init", v, err, drv.inits)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestRealProbe uses this system's drivers. On a machine without a GPU
// (CI, this sandbox, Wine) it must fall back without error or panic; with
// one it must report a card.
func TestRealProbe(t *testing.T) {
	var buf bytes.Buffer
	p := New(fallback, slog.New(slog.NewTextHandler(&buf, nil)))
	defer p.Close()
	for range 3 {
		v, err := p.Read(context.Background())
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		switch {
		case v.Measured():
			if v.Total == 0 || v.Used+v.Free > v.Total+gib || len(v.Cards) == 0 {
				t.Errorf("implausible reading %+v", v)
			}
			t.Logf("%s: %+v", card.SourceLabel(v.Source), v)
		case v.Source == card.SourceEstimated:
			if v.Total != fallback || v.Used != 0 || v.Free != 0 || !strings.HasPrefix(v.Note, "NVML unavailable: ") {
				t.Errorf("fallback reading %+v", v)
			}
			t.Logf("fallback: %s", v.Note)
		default:
			t.Fatalf("source %q", v.Source)
		}
	}
	if strings.Count(buf.String(), "level=WARN") > 1 {
		t.Errorf("fallback logged more than once:\n%s", buf.String())
	}
}

// Read counts what Ollama's processes hold, by process name, so the CUDA
// context Ollama pays for is not blamed on other programs.
func TestReadOllamaShare(t *testing.T) {
	gpu := device{Name: "GPU", Total: 8 * gib, Used: 6 * gib, Free: 2 * gib}
	names := map[uint32]string{10: "ollama", 11: "ollama", 12: "llama-server", 20: "firefox"}
	drv := &fakeDriver{devs: []device{gpu}, procs: map[int][]process{0: {
		{PID: 10, Used: gib}, {PID: 11, Used: 3 * gib}, {PID: 12, Used: gib / 2}, {PID: 20, Used: gib},
	}}}
	p, _, _ := newTestProbe(drv)
	p.procName = func(pid uint32) string { return names[pid] }
	got, err := p.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(4*gib + gib/2); got.Ollama != want {
		t.Fatalf("Ollama share = %d, want %d", got.Ollama, want)
	}
	drv.procErr = map[int]error{0: ErrNotSupported}
	if got, _ := p.Read(context.Background()); got.Ollama != 0 {
		t.Fatalf("Ollama share = %d where the driver lists no processes, want 0 (unknown)", got.Ollama)
	}
}

// cardDriver is a driver that answers with fixed readings.
type cardDriver struct {
	rs      []reading
	initErr error
}

func (cardDriver) name() string    { return "fake" }
func (d cardDriver) init() error   { return d.initErr }
func (cardDriver) shutdown() error { return nil }
func (d cardDriver) read(context.Context, func(uint32) bool) ([]reading, error) {
	return d.rs, nil
}

// On Windows DXGI sees NVIDIA's cards too: a card of a vendor an earlier
// driver (NVML) read is left out, so it is not counted twice.
func TestLaterDriverSkipsCoveredVendor(t *testing.T) {
	nv := device{Name: "NVIDIA GeForce RTX 3060", Total: 12 * gib, Used: gib, Free: 11 * gib}
	dxgi := cardDriver{rs: []reading{
		{card: card.Card{Name: "NVIDIA GeForce RTX 3060", Source: card.SourceDXGI, Total: 12 * gib}, vendor: vendorNVIDIA},
		{card: card.Card{Name: "AMD Radeon RX 7600", Source: card.SourceDXGI, Total: 8 * gib, Used: 2 * gib, Free: 6 * gib}, vendor: vendorAMD},
	}}
	p, _, _ := newTestProbe(&fakeDriver{devs: []device{nv}}, dxgi)
	v, err := p.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Cards) != 2 || v.Cards[0].Source != card.SourceNVML || v.Cards[1].Source != card.SourceDXGI ||
		v.Total != 20*gib || v.Source != "nvml+dxgi" || card.SourceLabel(v.Source) != "NVML + DXGI" {
		t.Errorf("Read = %+v", v)
	}
	// Without NVML, DXGI reads both.
	p, _, _ = newTestProbe(&fakeDriver{initErrs: []error{errNoLibrary}}, dxgi)
	if v, _ := p.Read(context.Background()); len(v.Cards) != 2 || v.Total != 20*gib || v.Source != card.SourceDXGI {
		t.Errorf("Read without NVML = %+v", v)
	}
}
