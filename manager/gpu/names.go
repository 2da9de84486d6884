package gpu

import (
	"fmt"
	"strconv"
	"strings"
)

// amdgpuIDs maps an AMD device id and revision to the marketing name, as
// libdrm's amdgpu.ids lists them (/usr/share/libdrm/amdgpu.ids, installed
// with Mesa): the device id alone does not tell an RX 7600 (7480, rev CF)
// from an RX 7600 XT (7480, rev C0).
type amdgpuIDs map[[2]uint16]string

// parseAMDGPUIDs reads amdgpu.ids: "# comments", a version line ("1.0.0"),
// then "device_id,\trevision_id,\tproduct_name" lines in hex.
func parseAMDGPUIDs(text string) amdgpuIDs {
	out := amdgpuIDs{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		parts := strings.SplitN(line, ",", 3)
		if len(parts) != 3 {
			continue // the version line, or a line we do not understand
		}
		dev, err1 := strconv.ParseUint(strings.TrimSpace(parts[0]), 16, 16)
		rev, err2 := strconv.ParseUint(strings.TrimSpace(parts[1]), 16, 16)
		name := strings.TrimSpace(parts[2])
		if err1 != nil || err2 != nil || name == "" {
			continue
		}
		key := [2]uint16{uint16(dev), uint16(rev)}
		if _, dup := out[key]; !dup { // libdrm takes the first match
			out[key] = name
		}
	}
	return out
}

// intelNames are Intel's discrete cards, from the PCI ID repository
// (pci-ids.ucw.cz, vendor 8086: "56a0 DG2 [Arc A770]", "e20b Battlemage
// G21 [Arc B580]"). Intel ships no marketing-name table like amdgpu.ids,
// and pci.ids is not installed everywhere.
var intelNames = map[uint16]string{
	0x56a0: "Intel Arc A770", 0x56a1: "Intel Arc A750", 0x56a2: "Intel Arc A580",
	0x56a5: "Intel Arc A380", 0x56a6: "Intel Arc A310",
	0xe20b: "Intel Arc B580", 0xe20c: "Intel Arc B570",
}

// cardName names a card: the kernel's product_name where it has one (AMD
// server cards, from the board's FRU), else the marketing name from the
// ids, else the vendor and PCI ids.
func cardName(product string, vendor, dev, rev uint16, ids amdgpuIDs) string {
	if p := strings.TrimSpace(product); p != "" {
		return p
	}
	switch vendor {
	case vendorAMD:
		if n, ok := ids[[2]uint16{dev, rev}]; ok {
			return n
		}
		return fmt.Sprintf("AMD GPU %04x:%04x (rev %02x)", vendor, dev, rev)
	case vendorIntel:
		if n, ok := intelNames[dev]; ok {
			return n
		}
		return fmt.Sprintf("Intel GPU %04x:%04x", vendor, dev)
	}
	return fmt.Sprintf("GPU %04x:%04x", vendor, dev)
}
