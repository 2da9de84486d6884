package gpu

import (
	"os"
	"path/filepath"
)

// roots are where the machine's /sys, /proc and / are, as gopsutil reads
// them (HOST_SYS, HOST_PROC, HOST_ROOT): tests point them at a copied
// tree, and a container with the host's /sys and /proc mounted elsewhere
// reads the host's cards.
type roots struct {
	sys, proc, root string
}

// hostRoots reads the variables once, when the probe is made.
func hostRoots() roots {
	return roots{sys: envOr("HOST_SYS", "/sys"), proc: envOr("HOST_PROC", "/proc"), root: envOr("HOST_ROOT", "/")}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (r roots) sysPath(parts ...string) string {
	return filepath.Join(append([]string{r.sys}, parts...)...)
}

func (r roots) procPath(parts ...string) string {
	return filepath.Join(append([]string{r.proc}, parts...)...)
}

func (r roots) rootPath(parts ...string) string {
	return filepath.Join(append([]string{r.root}, parts...)...)
}
