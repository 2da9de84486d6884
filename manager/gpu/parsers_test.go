package gpu

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// treeFiles are the copied machines' files of a name (fdinfo, uevent,
// amdgpu.ids), as seeds for the fuzzers.
func treeFiles(f *testing.F, pattern string) []string {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "trees", "*", pattern))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed files for %s: %v", pattern, err)
	}
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func TestParseFDInfo(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		driver string
		pdev   string
		id     uint64
		hasID  bool
		bytes  uint64
	}{
		{
			name: "amdgpu 6.13+: resident preferred over the legacy key",
			text: "drm-driver:\tamdgpu\ndrm-client-id:\t142\ndrm-pdev:\t0000:03:00.0\ndrm-total-vram:\t3 GiB\n" +
				"drm-resident-vram:\t2048 MiB\ndrm-memory-vram:\t2097152 KiB\ndrm-resident-gtt:\t512 MiB\n",
			driver: "amdgpu", pdev: "0000:03:00.0", id: 142, hasID: true, bytes: 2 * gib,
		},
		{
			name:   "amdgpu 5.19-6.12: drm-memory-vram alone",
			text:   "pasid:\t32770\ndrm-driver:\tamdgpu\ndrm-pdev:\t0000:0c:00.0\ndrm-client-id:\t38\ndrm-memory-vram:\t5242880 KiB\ndrm-memory-gtt: \t2048 KiB\n",
			driver: "amdgpu", pdev: "0000:0c:00.0", id: 38, hasID: true, bytes: 5 * gib,
		},
		{
			name:  "amdgpu 5.14-5.18: pdev and vram mem in kB, no drm-driver",
			text:  "pdev:\t0000:0C:00.0\npasid:\t32769\nvram mem:\t1048576 kB\ngtt mem:\t2048 kB\n",
			pdev:  "0000:0c:00.0",
			bytes: gib,
		},
		{
			name:   "xe: one region per tile, bytes without a unit",
			text:   "drm-driver:\txe\ndrm-client-id:\t4\ndrm-pdev:\t0000:03:00.0\ndrm-total-system:\t8 MiB\ndrm-resident-vram0:\t1024\ndrm-resident-vram1:\t3 KiB\n",
			driver: "xe", pdev: "0000:03:00.0", id: 4, hasID: true, bytes: 1024 + 3*1024,
		},
		{
			name:   "i915: local regions, not system or stolen",
			text:   "drm-driver:\ti915\ndrm-client-id:\t21\ndrm-pdev:\t0000:03:00.0\ndrm-total-system0:\t4 MiB\ndrm-total-local0:\t2048 MiB\ndrm-total-stolen-local0:\t64 MiB\n",
			driver: "i915", pdev: "0000:03:00.0", id: 21, hasID: true, bytes: 2 * gib,
		},
		{
			name:   "not DRM, or garbage values",
			text:   "pos:\t0\nflags:\t02100002\ndrm-driver:\tamdgpu\ndrm-client-id:\tx\ndrm-memory-vram:\t12 PiB\ndrm-resident-vram:\t-1 KiB\n",
			driver: "amdgpu",
		},
		{
			name:   "a size that would overflow is dropped",
			text:   "drm-driver:\tamdgpu\ndrm-memory-vram:\t18446744073709551615 MiB\n",
			driver: "amdgpu",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseFDInfo(tt.text)
			if c.driver != tt.driver || c.pdev != tt.pdev || c.id != tt.id || c.hasID != tt.hasID {
				t.Errorf("parsed %+v, want driver %q pdev %q id %d/%v", c, tt.driver, tt.pdev, tt.id, tt.hasID)
			}
			if got := c.deviceBytes(); got != tt.bytes {
				t.Errorf("deviceBytes = %d, want %d", got, tt.bytes)
			}
		})
	}
}

func FuzzFDInfo(f *testing.F) {
	for _, s := range treeFiles(f, "proc/*/fdinfo/*") {
		f.Add(s)
	}
	f.Add("vram mem:\t1 kB\npdev:\t0000:00:00.0\n")
	f.Add("drm-resident-vram0:\t18446744073709551615\ndrm-resident-vram1:\t1\n")
	f.Fuzz(func(t *testing.T, text string) {
		c := parseFDInfo(text)
		for region := range c.regions {
			if region == "" {
				t.Fatalf("empty region from %q", text)
			}
		}
		if strings.TrimSpace(c.driver) != c.driver || strings.TrimSpace(c.pdev) != c.pdev {
			t.Fatalf("untrimmed %q %q", c.driver, c.pdev)
		}
		_ = c.deviceBytes()
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "3072 MiB", "1024 KiB", "12 kB", "1 GiB", "5 PiB", "-1", "18446744073709551615 KiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseSize(s)
		if !ok {
			return
		}
		if back, ok := parseSize(strconv.FormatUint(n, 10)); !ok || back != n {
			t.Fatalf("%q parsed as %d, which reads back as %d", s, n, back)
		}
	})
}

func FuzzSysfsValues(f *testing.F) {
	for _, s := range treeFiles(f, "sys/class/drm/card*/device/uevent") {
		f.Add(s)
	}
	for _, s := range treeFiles(f, "sys/class/drm/card*/device/mem_info_vram_*") {
		f.Add(s)
	}
	f.Add("0x1002\n")
	f.Add("0xFFFFFFFFF\n")
	f.Fuzz(func(t *testing.T, text string) {
		for k := range parseUevent(text) {
			if k == "" || strings.ContainsAny(k, "\n") {
				t.Fatalf("bad key %q", k)
			}
		}
		if n, err := parseSysfsHex(text); err == nil && n > 0xffffffff {
			t.Fatalf("id %x out of range", n)
		}
		_, _ = parseSysfsUint(text)
	})
}

func TestParseAMDGPUIDs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "trees", "rx7600", "root", "usr", "share", "libdrm", "amdgpu.ids"))
	if err != nil {
		t.Fatal(err)
	}
	ids := parseAMDGPUIDs(string(b))
	tests := []struct {
		dev, rev uint16
		want     string
	}{
		{0x7480, 0xcf, "AMD Radeon RX 7600"},
		{0x7480, 0xc0, "AMD Radeon RX 7600 XT"},
		{0x73bf, 0xc1, "AMD Radeon RX 6800 XT"},
		{0x7480, 0x99, "AMD GPU 1002:7480 (rev 99)"}, // a revision the table lacks
	}
	for _, tt := range tests {
		if got := cardName("", vendorAMD, tt.dev, tt.rev, ids); got != tt.want {
			t.Errorf("%04x rev %02x = %q, want %q", tt.dev, tt.rev, got, tt.want)
		}
	}
	if got := cardName("AMD Instinct MI210\n", vendorAMD, 0x740f, 2, ids); got != "AMD Instinct MI210" {
		t.Errorf("product_name not preferred: %q", got)
	}
}

func FuzzAMDGPUIDs(f *testing.F) {
	for _, s := range treeFiles(f, "root/usr/share/libdrm/amdgpu.ids") {
		f.Add(s)
	}
	f.Add("7480,\tCF\n7480,,\n,,x\nFFFFF,\t00,\tToo big\n")
	f.Fuzz(func(t *testing.T, text string) {
		for k, name := range parseAMDGPUIDs(text) {
			if name == "" || strings.TrimSpace(name) != name {
				t.Fatalf("%v: bad name %q", k, name)
			}
		}
	})
}

func TestParseI915Regions(t *testing.T) {
	b := i915Reply([]i915Region{{class: 0, probed: 31 * gib, unallocated: 30 * gib}, {class: 1, instance: 0, probed: 16 * gib, unallocated: 12 * gib}})
	regions, err := parseI915Regions(b)
	if err != nil {
		t.Fatal(err)
	}
	total, used, known := i915Local(regions)
	if total != 16*gib || used != 4*gib || !known {
		t.Errorf("local = %d, used %d (%v); want 16 GiB, 4 GiB", total, used, known)
	}
	if _, err := parseI915Regions(b[:len(b)-1]); err == nil {
		t.Error("a cut reply parsed")
	}
}

// i915Reply encodes regions as the kernel answers the query.
func i915Reply(regions []i915Region) []byte {
	b := make([]byte, i915RegionsHeader+len(regions)*i915RegionInfo)
	binary.LittleEndian.PutUint32(b, uint32(len(regions)))
	for i, r := range regions {
		o := b[i915RegionsHeader+i*i915RegionInfo:]
		binary.LittleEndian.PutUint16(o, r.class)
		binary.LittleEndian.PutUint16(o[2:], r.instance)
		binary.LittleEndian.PutUint64(o[8:], r.probed)
		binary.LittleEndian.PutUint64(o[16:], r.unallocated)
	}
	return b
}

func FuzzI915Regions(f *testing.F) {
	f.Add(i915Reply([]i915Region{{class: 1, probed: 16 * gib, unallocated: 16 * gib}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		regions, err := parseI915Regions(b)
		if err == nil && i915RegionsHeader+len(regions)*i915RegionInfo > len(b) {
			t.Fatalf("%d regions from %d bytes", len(regions), len(b))
		}
		_, _, _ = i915Local(regions)
	})
}

func FuzzBusID(f *testing.F) {
	f.Add([]byte("00000000:01:00.0\x00garbage"))
	f.Add([]byte("0000:01:00.0"))
	f.Add([]byte("00000001:C1:00.0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := busID(b)
		if strings.ContainsRune(s, 0) || strings.ToLower(s) != s {
			t.Fatalf("busID(%q) = %q", b, s)
		}
	})
}

func TestBusID(t *testing.T) {
	for in, want := range map[string]string{
		"00000000:01:00.0\x00": "0000:01:00.0", "00000001:C1:00.0": "0001:c1:00.0", "0000:03:00.0": "0000:03:00.0",
		"10000000:01:00.0": "10000000:01:00.0", // a domain that does not fit 4 digits stays whole
	} {
		if got := busID([]byte(in)); got != want {
			t.Errorf("busID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePDHInstance(t *testing.T) {
	tests := []struct {
		name string
		pid  uint32
		luid string
		ok   bool
	}{
		{"pid_1234_luid_0x00000000_0x0000D1E4_phys_0", 1234, "luid_0x00000000_0x0000d1e4", true},
		{"luid_0x00000000_0x0000D1E4_phys_0", 0, "luid_0x00000000_0x0000d1e4", true},
		{"luid_0x00000000_0x0000D1E4", 0, "luid_0x00000000_0x0000d1e4", true},
		{"pid_x_luid_0x00000000_0x0000D1E4_phys_0", 0, "", false},
		{"luid_0x0000000_0x0000D1E4_phys_0", 0, "", false},
		{"_Total", 0, "", false},
	}
	for _, tt := range tests {
		pid, luid, ok := parsePDHInstance(tt.name)
		if pid != tt.pid || luid != tt.luid || ok != tt.ok {
			t.Errorf("%q = %d %q %v, want %d %q %v", tt.name, pid, luid, ok, tt.pid, tt.luid, tt.ok)
		}
	}
	if got := luidKey(0, 0xd1e4); got != "luid_0x00000000_0x0000d1e4" {
		t.Errorf("luidKey = %q", got)
	}
}

func FuzzPDHInstance(f *testing.F) {
	f.Add("pid_1234_luid_0x00000000_0x0000D1E4_phys_0")
	f.Add("luid_0x00000000_0x0000D1E4_phys_0")
	f.Add("pid_4294967296_luid_0x00000000_0x0000D1E4_phys_0")
	f.Fuzz(func(t *testing.T, name string) {
		_, luid, ok := parsePDHInstance(name)
		if ok && len(luid) != len("luid_0x00000000_0x00000000") {
			t.Fatalf("%q: luid %q", name, luid)
		}
	})
}
