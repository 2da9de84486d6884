package gpu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vramkeeper/vramkeeper/manager/card"
)

// drmDriver reads AMD and Intel cards through the kernel, with no vendor
// library: sysfs for each card's memory (amdgpu's mem_info_vram_total and
// mem_info_vram_used, xe's tile*/physical_vram_size_bytes, i915's
// memory-regions query), and every process's DRM fdinfo for what each
// program holds (Documentation/gpu/drm-usage-stats.rst). nvtop and Ollama
// read the same files.
type drmDriver struct {
	roots roots
	// queryI915 asks an i915 card's render node for its memory regions;
	// tests replace it, as a copied tree has no device to ask.
	queryI915 func(node string) ([]i915Region, error)

	cards []drmCard // found by init
	// picked remembers want's answer per PID from the last scan, so a
	// poll reads the names of new processes only: a name costs a file
	// read, and a desktop runs hundreds of processes.
	picked map[uint32]bool
}

// drmCard is one card of a driver we read.
type drmCard struct {
	dir        string // .../class/drm/cardN/device
	pdev       string // PCI slot, "0000:03:00.0"
	kernel     string // "amdgpu", "xe", "i915"
	name       string
	vendor     uint16
	integrated bool
	// total is fixed for xe and i915 (read at init); amdgpu's is read
	// with its used memory.
	total uint64
	node  string // render node, for the i915 query
}

// drmKernels are the kernel drivers read here; an "nvidia" card (NVML's)
// or a virtual one is left alone.
var drmKernels = []string{card.SourceAMDGPU, card.SourceXe, card.SourceI915}

func newDRM(r roots) *drmDriver { return &drmDriver{roots: r, queryI915: queryI915} }

func (*drmDriver) name() string { return "DRM" }

func (d *drmDriver) shutdown() error { d.cards = nil; return nil }

// init finds the cards: /sys/class/drm/card<N> (not their connectors,
// card1-DP-1), whose device/driver is one of drmKernels.
func (d *drmDriver) init() error {
	d.cards = nil
	ents, err := os.ReadDir(d.roots.sysPath("class", "drm"))
	if err != nil {
		return fmt.Errorf("no DRM devices: %w", err)
	}
	ids := d.amdgpuIDs()
	seen := map[string]bool{}
	var errs []error
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "card")
		if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
			continue
		}
		c, ok, err := d.card(filepath.Join(d.roots.sysPath("class", "drm", e.Name()), "device"), ids)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.Name(), err))
			continue
		}
		if ok && !seen[c.pdev] {
			seen[c.pdev] = true
			d.cards = append(d.cards, c)
		}
	}
	if len(d.cards) == 0 {
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		return errors.New("no amdgpu, xe or i915 card")
	}
	slices.SortFunc(d.cards, func(a, b drmCard) int { return strings.Compare(a.pdev, b.pdev) })
	return nil
}

// card reads one card's fixed facts; ok is false for a driver we do not read.
func (d *drmDriver) card(dir string, ids amdgpuIDs) (drmCard, bool, error) {
	link, err := os.Readlink(filepath.Join(dir, "driver"))
	if err != nil {
		return drmCard{}, false, nil // no driver bound: nothing to read
	}
	c := drmCard{dir: dir, kernel: filepath.Base(link)}
	if !slices.Contains(drmKernels, c.kernel) {
		return drmCard{}, false, nil
	}
	ue, err := os.ReadFile(filepath.Join(dir, "uevent"))
	if err != nil {
		return drmCard{}, false, fmt.Errorf("read uevent: %w", err)
	}
	c.pdev = strings.ToLower(parseUevent(string(ue))["PCI_SLOT_NAME"])
	if c.pdev == "" {
		return drmCard{}, false, nil // not a PCI card: fdinfo could not be matched to it
	}
	vendor, _ := readHexFile(filepath.Join(dir, "vendor"))
	dev, _ := readHexFile(filepath.Join(dir, "device"))
	rev, _ := readHexFile(filepath.Join(dir, "revision"))
	product, _ := os.ReadFile(filepath.Join(dir, "product_name"))
	c.vendor = uint16(vendor)
	c.name = cardName(string(product), c.vendor, uint16(dev), uint16(rev), ids)
	c.node = renderNode(dir)

	switch c.kernel {
	case card.SourceAMDGPU:
		total, err := readUintFile(filepath.Join(dir, "mem_info_vram_total"))
		if err != nil {
			return drmCard{}, false, err
		}
		// Ollama's rule (discover/amd_linux.go, IGPUMemLimit): an APU
		// reports its BIOS carve-out, 512 MiB typically; less than 1 GiB
		// is an integrated GPU.
		c.integrated = total < 1<<30
	case card.SourceXe:
		// xe adds physical_vram_size_bytes per tile on discrete cards only
		// (xe_tile_sysfs.c, IS_DGFX).
		tiles, _ := filepath.Glob(filepath.Join(dir, "tile[0-9]*", "physical_vram_size_bytes"))
		for _, t := range tiles {
			n, err := readUintFile(t)
			if err != nil {
				return drmCard{}, false, err
			}
			c.total += n
		}
		c.integrated = c.total == 0
	case card.SourceI915:
		regions, err := d.queryI915(c.node)
		switch {
		case err == nil:
			c.total, _, _ = i915Local(regions)
			c.integrated = c.total == 0
		case c.pdev == "0000:00:02.0":
			// Intel's integrated GPU sits at this slot (nvtop's
			// INTEGRATED_I915_GPU_PCI_ID): no local memory to ask for.
			c.integrated = true
		default:
			return drmCard{}, false, fmt.Errorf("%s: local memory unknown: %w", c.name, err)
		}
	}
	return c, true, nil
}

// renderNode is the card's /dev/dri/renderD<N>, from its drm/ folder in sysfs.
func renderNode(dir string) string {
	nodes, _ := filepath.Glob(filepath.Join(dir, "drm", "renderD*"))
	if len(nodes) == 0 {
		return ""
	}
	return filepath.Join("/dev/dri", filepath.Base(nodes[0]))
}

// amdgpuIDs reads libdrm's table of AMD marketing names, if installed.
func (d *drmDriver) amdgpuIDs() amdgpuIDs {
	for _, p := range []string{"usr/share/libdrm/amdgpu.ids", "usr/local/share/libdrm/amdgpu.ids"} {
		if b, err := os.ReadFile(d.roots.rootPath(p)); err == nil {
			return parseAMDGPUIDs(string(b))
		}
	}
	return nil
}

func (d *drmDriver) read(ctx context.Context, want func(uint32) bool) ([]reading, error) {
	out := make([]reading, len(d.cards))
	// xe and i915 say nothing in sysfs of what is in use: it is the sum of
	// every client's memory, so every process is read for them.
	everyone := false
	for i, c := range d.cards {
		out[i] = reading{card: card.Card{Name: c.name, Source: c.kernel, ID: c.pdev, Total: c.total,
			Integrated: c.integrated}, vendor: c.vendor}
		if c.kernel == card.SourceAMDGPU {
			total, err := readUintFile(filepath.Join(c.dir, "mem_info_vram_total"))
			if err != nil {
				return nil, err
			}
			used, err := readUintFile(filepath.Join(c.dir, "mem_info_vram_used"))
			if err != nil {
				return nil, err
			}
			out[i].card.Total, out[i].card.Used = total, min(used, total)
		} else if !c.integrated {
			everyone = true
		}
	}
	scan, err := d.scan(ctx, want, everyone)
	if err != nil {
		return nil, err
	}
	for i, c := range d.cards {
		r := &out[i]
		r.procs, r.procsErr = scan.wanted[c.pdev], scan.hidden
		if c.kernel != card.SourceAMDGPU {
			r.card.Used = min(scan.all[c.pdev], r.card.Total)
		}
		r.card.Free = r.card.Total - r.card.Used
	}
	return out, nil
}

// fdScan is what the processes' DRM clients hold, per card (PCI slot).
type fdScan struct {
	wanted map[string][]process // the processes want picked
	all    map[string]uint64    // every client, when asked for everyone
	hidden error                // a wanted process's fds could not be read
}

// scan reads /proc/PID/fdinfo of the processes want picks (every process
// when everyone), counting each DRM client once: a client's fd may be
// dup'd or inherited by a child, and its fdinfo then repeats in each.
func (d *drmDriver) scan(ctx context.Context, want func(uint32) bool, everyone bool) (fdScan, error) {
	s := fdScan{wanted: map[string][]process{}, all: map[string]uint64{}}
	ents, err := os.ReadDir(d.roots.proc)
	if err != nil {
		// A container without the host's /proc: the cards are read, the
		// processes not.
		s.hidden = fmt.Errorf("%w: cannot list processes: %w", ErrNotSupported, err)
		return s, nil
	}
	type client struct {
		pdev string
		id   uint64
	}
	seen := map[client]bool{}
	picked := map[uint32]bool{}
	defer func() {
		if want != nil {
			d.picked = picked
		}
	}()
	for _, e := range ents {
		pid64, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return s, err
		}
		pid := uint32(pid64)
		wanted, known := d.picked[pid]
		switch {
		case want == nil:
			wanted = true
		case !known:
			wanted = want(pid)
		}
		picked[pid] = wanted
		if !wanted && !everyone {
			continue
		}
		held, err := d.clients(pid, func(c drmClient) bool {
			if !c.hasID {
				return true
			}
			k := client{c.pdev, c.id}
			if seen[k] {
				return false
			}
			seen[k] = true
			return true
		})
		if err != nil {
			if wanted && errors.Is(err, fs.ErrPermission) {
				s.hidden = fmt.Errorf("%w: the GPU memory of process %d is another user's to read", ErrNotSupported, pid)
			}
			continue // gone since listed, or not ours to read
		}
		for pdev, b := range held {
			s.all[pdev] += b
			if wanted {
				s.wanted[pdev] = append(s.wanted[pdev], process{PID: pid, Used: b})
			}
		}
	}
	return s, nil
}

// clients sums what one process's DRM clients hold per card, for the
// clients first reports as new.
func (d *drmDriver) clients(pid uint32, first func(drmClient) bool) (map[string]uint64, error) {
	fdDir := d.roots.procPath(strconv.FormatUint(uint64(pid), 10), "fd")
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	held := map[string]uint64{}
	for _, fd := range fds {
		// Only DRM device files have usage stats; reading the link is
		// cheaper than reading every fd's fdinfo.
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil || !strings.HasPrefix(target, "/dev/dri/") {
			continue
		}
		b, err := os.ReadFile(d.roots.procPath(strconv.FormatUint(uint64(pid), 10), "fdinfo", fd.Name()))
		if err != nil {
			continue
		}
		c := parseFDInfo(string(b))
		// amdgpu before 5.19 printed no drm-driver line ("pdev", "vram mem").
		if c.pdev == "" || (c.driver != "" && !slices.Contains(drmKernels, c.driver)) || !first(c) {
			continue
		}
		held[c.pdev] += c.deviceBytes()
	}
	return held, nil
}

func readUintFile(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := parseSysfsUint(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

func readHexFile(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseSysfsHex(string(b))
}
