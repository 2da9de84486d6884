package gpu

import (
	"fmt"
	"strconv"
	"strings"
)

// parseUevent reads a device's uevent file: KEY=value lines
// (DRIVER=amdgpu, PCI_ID=1002:7480, PCI_SLOT_NAME=0000:03:00.0).
func parseUevent(text string) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(text) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// parseSysfsUint reads a number file such as mem_info_vram_total: decimal
// bytes and a newline.
func parseSysfsUint(text string) (uint64, error) {
	s := strings.TrimSpace(text)
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number of bytes: %q", clip(s))
	}
	return n, nil
}

// parseSysfsHex reads an id file such as vendor or device: "0x1002".
func parseSysfsHex(text string) (uint64, error) {
	s := strings.TrimSpace(text)
	h, ok := strings.CutPrefix(strings.ToLower(s), "0x")
	if !ok {
		return 0, fmt.Errorf("not a hex id: %q", clip(s))
	}
	n, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("not a hex id: %q", clip(s))
	}
	return n, nil
}

// clip shortens what a bad file held for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
