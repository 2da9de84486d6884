package gpu

import (
	"fmt"
	"strconv"
	"strings"
)

// The GPU performance counters Task Manager reads name their instances
// after the adapter's LUID and, per process, the PID:
//
//	\GPU Adapter Memory(luid_0x00000000_0x0000D1E4_phys_0)\Dedicated Usage
//	\GPU Process Memory(pid_1234_luid_0x00000000_0x0000D1E4_phys_0)\Dedicated Usage
//
// (Ollama builds the same LUID prefix in ggml's mem_dxgi_pdh.cpp.)

// luidKey is how an adapter's LUID appears in those names, lower-cased.
func luidKey(high int32, low uint32) string {
	return fmt.Sprintf("luid_0x%08x_0x%08x", uint32(high), low)
}

// parsePDHInstance reads a counter instance's name: the PID (0 for an
// adapter's instance) and the LUID key; ok is false for a name of
// another shape.
func parsePDHInstance(name string) (pid uint32, luid string, ok bool) {
	s := strings.ToLower(name)
	if rest, found := strings.CutPrefix(s, "pid_"); found {
		num, tail, cut := strings.Cut(rest, "_")
		n, err := strconv.ParseUint(num, 10, 32)
		if !cut || err != nil {
			return 0, "", false
		}
		pid, s = uint32(n), tail
	}
	// luid_0x<8 hex>_0x<8 hex>, then _phys_<n> or nothing
	const prefix, width = "luid_0x", len("luid_0x00000000_0x00000000")
	if !strings.HasPrefix(s, prefix) || len(s) < width {
		return 0, "", false
	}
	key := s[:width]
	if key[15:18] != "_0x" || !isHex(key[7:15]) || !isHex(key[18:]) {
		return 0, "", false
	}
	if tail := s[width:]; tail != "" && !strings.HasPrefix(tail, "_") {
		return 0, "", false
	}
	return pid, key, true
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return s != ""
}
