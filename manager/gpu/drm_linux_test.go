package gpu

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vramkeeper/vramkeeper/manager/card"
)

const mib = 1 << 20

// treeRoots points the readers at a copied machine under testdata/trees
// (see testdata/trees/README.md for where each file's content comes from).
func treeRoots(name string) roots {
	dir := filepath.Join("testdata", "trees", name)
	return roots{sys: filepath.Join(dir, "sys"), proc: filepath.Join(dir, "proc"), root: filepath.Join(dir, "root")}
}

// a770Regions answers the i915 memory-regions query as an Arc A770 (16 GiB
// of local memory) and Intel's integrated GPU (system memory only) do.
func a770Regions(node string) ([]i915Region, error) {
	switch node {
	case "/dev/dri/renderD129":
		return []i915Region{{class: 0, probed: 31 * gib, unallocated: 31 * gib}, {class: 1, probed: 16 * gib, unallocated: 16 * gib}}, nil
	case "/dev/dri/renderD128":
		return []i915Region{{class: 0, probed: 31 * gib, unallocated: 31 * gib}}, nil
	}
	return nil, errors.New("no such device")
}

// treeProbe reads the tree with the DRM driver, after an NVML driver that
// answers with nv's cards (none: no library).
func treeProbe(t *testing.T, tree string, nv ...device) *Probe {
	t.Helper()
	lib := &fakeDriver{devs: nv}
	if len(nv) == 0 {
		lib.initErrs = []error{errNoLibrary}
	}
	r := treeRoots(tree)
	drm := newDRM(r)
	drm.queryI915 = a770Regions
	p, _, _ := newTestProbe(lib, drm)
	p.procName = r.comm
	return p
}

func TestDRMTrees(t *testing.T) {
	rtx4070 := device{Name: "NVIDIA GeForce RTX 4070", BusID: "0000:01:00.0", Total: 12 * gib, Used: 400 * mib, Free: 12*gib - 400*mib}
	type card struct {
		name, source string
		total, used  uint64
		ollama       uint64
		integrated   bool
	}
	tests := []struct {
		tree      string
		nv        []device
		source    string
		total     uint64
		used      uint64
		ollama    uint64
		cards     []card
		wantNote  string
		estimated bool
	}{
		{
			tree: "rx7600", source: "amdgpu", total: 8 * gib, used: 3*gib + 128*mib,
			cards:    []card{{"AMD Radeon RX 7600", "amdgpu", 8 * gib, 3*gib + 128*mib, 0, false}},
			wantNote: "1 GPU",
		},
		{
			tree: "rx6800xt", source: "amdgpu", total: 16 * gib, used: 5*gib + 510*mib, ollama: 5 * gib,
			cards: []card{{"AMD Radeon RX 6800 XT", "amdgpu", 16 * gib, 5*gib + 510*mib, 5 * gib, false}},
		},
		{
			// i915 says nothing of use in sysfs: it is what the clients hold.
			tree: "arc-a770", source: "i915", total: 16 * gib, used: 3*gib + 512*mib, ollama: 2 * gib,
			cards: []card{
				{"Intel GPU 8086:a780", "i915", 0, 0, 0, true},
				{"Intel Arc A770", "i915", 16 * gib, 3*gib + 512*mib, 2 * gib, false},
			},
			wantNote: "Intel GPU 8086:a780 is integrated (shares system memory), not counted",
		},
		{
			tree: "b580", source: "xe", total: 12 * gib, used: 3 * gib, ollama: 3 * gib,
			cards: []card{{"Intel Arc B580", "xe", 12 * gib, 3 * gib, 3 * gib, false}},
		},
		{
			tree: "nvidia-amd", nv: []device{rtx4070}, source: "nvml+amdgpu", total: 20 * gib, used: 400*mib + 1*gib,
			cards: []card{
				{"NVIDIA GeForce RTX 4070", "nvml", 12 * gib, 400 * mib, 0, false},
				{"AMD Radeon RX 7600", "amdgpu", 8 * gib, 1 * gib, 0, false},
			},
			wantNote: "NVML: 1 GPU; amdgpu (kernel): 1 GPU; 2 GPUs summed",
		},
		{
			tree: "two-amd", source: "amdgpu", total: 20 * gib, used: 3*gib + 148*mib,
			cards: []card{
				{"AMD Radeon RX 7600", "amdgpu", 8 * gib, 3*gib + 128*mib, 0, false},
				{"AMD Radeon RX 6700 XT", "amdgpu", 12 * gib, 20 * mib, 0, false},
			},
			wantNote: "2 GPUs summed",
		},
		{
			// An APU's carve-out is not a card to budget: the configured
			// size, and the GPU shown for what it is.
			tree: "apu", source: "estimated", total: fallback, estimated: true,
			cards:    []card{{"AMD Radeon 780M Graphics", "amdgpu", 512 * mib, 170 * mib, 0, true}},
			wantNote: "AMD Radeon 780M Graphics is integrated (shares system memory); using --vram 8.0 GiB",
		},
		{
			tree: "none", source: "estimated", total: fallback, estimated: true,
			wantNote: "NVML unavailable: libnvidia-ml.so not found; DRM unavailable: no DRM devices",
		},
	}
	for _, tt := range tests {
		t.Run(tt.tree, func(t *testing.T) {
			p := treeProbe(t, tt.tree, tt.nv...)
			v, err := p.Read(context.Background())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if v.Source != tt.source || v.Total != tt.total || v.Used != tt.used || v.Ollama != tt.ollama {
				t.Errorf("Read = %s total %d used %d ollama %d, want %s %d %d %d (note %q)",
					v.Source, v.Total, v.Used, v.Ollama, tt.source, tt.total, tt.used, tt.ollama, v.Note)
			}
			if v.Measured() == tt.estimated {
				t.Errorf("Measured() = %v", v.Measured())
			}
			if !strings.Contains(v.Note, tt.wantNote) {
				t.Errorf("note %q lacks %q", v.Note, tt.wantNote)
			}
			if len(v.Cards) != len(tt.cards) {
				t.Fatalf("%d cards %+v, want %d", len(v.Cards), v.Cards, len(tt.cards))
			}
			for i, want := range tt.cards {
				c := v.Cards[i]
				got := card{c.Name, c.Source, c.Total, c.Used, c.Ollama, c.Integrated}
				if got != want {
					t.Errorf("card %d = %+v, want %+v", i, got, want)
				}
				if !c.Integrated && (c.Free != c.Total-c.Used || c.ID == "") {
					t.Errorf("card %d: free %d of %d, used %d, id %q", i, c.Free, c.Total, c.Used, c.ID)
				}
			}
		})
	}
}

// A DRM client's fd that a process dup'd (or a child inherited) repeats
// its fdinfo: the client is counted once.
func TestDRMClientCountedOnce(t *testing.T) {
	p := treeProbe(t, "rx7600")
	procs, err := p.Processes(context.Background())
	if err != nil {
		t.Fatalf("Processes: %v", err)
	}
	want := map[uint32]uint64{4242: 3*gib - 96*mib, 2210: 96 * mib}
	if len(procs) != len(want) || procs[4242] != want[4242] || procs[2210] != want[2210] {
		t.Errorf("Processes = %v, want %v", procs, want)
	}
}

// Ollama's runner is told from other programs by its name, so "other
// programs" are what the card holds beyond it.
func TestDRMOllamaShare(t *testing.T) {
	p := treeProbe(t, "rx6800xt")
	v, err := p.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := v.Cards[0]
	if !c.OllamaKnown || c.Ollama != 5*gib || c.Used-c.Ollama != 510*mib {
		t.Errorf("card %+v: want Ollama's 5 GiB known, 510 MiB others", c)
	}
}

// A card that disappears (driver unbound, GPU reset) makes Read fail once
// and the probe fall back, then retry a minute later.
func TestDRMCardGone(t *testing.T) {
	dir := t.TempDir()
	r := roots{sys: filepath.Join(dir, "sys"), proc: filepath.Join(dir, "proc"), root: dir}
	copyTree(t, treeRoots("rx7600").sys, r.sys)
	copyTree(t, treeRoots("rx7600").proc, r.proc)
	drm := newDRM(r)
	p, clk, _ := newTestProbe(&fakeDriver{initErrs: []error{errNoLibrary}}, drm)
	p.procName = r.comm
	if v, err := p.Read(context.Background()); err != nil || v.Source != card.SourceAMDGPU {
		t.Fatalf("first Read = %+v, %v", v, err)
	}
	used := filepath.Join(r.sys, "class", "drm", "card1", "device", "mem_info_vram_used")
	removeFile(t, used)
	v, err := p.Read(context.Background())
	if err == nil || v.Source != card.SourceEstimated {
		t.Fatalf("Read without mem_info_vram_used = %s, %v; want the fallback and an error", v.Source, err)
	}
	writeFile(t, used, "1073741824\n")
	clk.t = clk.t.Add(retryEvery)
	if v, err := p.Read(context.Background()); err != nil || v.Used != gib {
		t.Errorf("Read after the card came back = %+v, %v", v, err)
	}
}

// copyTree copies a test tree, links as links.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkScanProc is the cost of one poll's process scan on this
// machine's /proc: for amdgpu only Ollama's processes are read (want),
// for xe and i915 every process.
func BenchmarkScanProc(b *testing.B) {
	r := roots{sys: "/sys", proc: "/proc", root: "/"}
	d := newDRM(r)
	want := func(pid uint32) bool { return isOllama(r.comm(pid)) }
	for _, everyone := range []bool{false, true} {
		name := "ollama"
		if everyone {
			name = "everyone"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := d.scan(context.Background(), want, everyone); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
