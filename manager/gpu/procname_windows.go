package gpu

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// processName is a process's image name without ".exe" ("ollama",
// "llama-server"), "" when it cannot be read.
func processName(pid uint32) string {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return ""
	}
	defer windows.CloseHandle(h)
	buf := make([]uint16, windows.MAX_PATH)
	n := uint32(len(buf))
	if err := windows.QueryFullProcessImageName(h, 0, &buf[0], &n); err != nil {
		return ""
	}
	name := filepath.Base(windows.UTF16ToString(buf[:n]))
	return strings.TrimSuffix(strings.ToLower(name), ".exe")
}

// processNames names processes on Windows; the roots are Linux's.
func processNames(roots) func(uint32) string { return processName }
