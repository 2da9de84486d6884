package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
)

type machine struct {
	CPU   string
	Cores int
	RAM   string
	OS    string
	Go    string
}

func (m machine) String() string {
	return fmt.Sprintf("Machine: %s, %d cores, %s RAM, %s, %s", m.CPU, m.Cores, m.RAM, m.OS, m.Go)
}

// machineInfo reads /proc and /etc; unknown fields say so rather than fail.
func machineInfo() machine {
	m := machine{CPU: "unknown CPU", Cores: runtime.NumCPU(), RAM: "unknown", OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		var kb uint64
		fmt.Sscanf(v, "%d", &kb)
		m.RAM = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	if v := procField("/etc/os-release", "PRETTY_NAME"); v != "" {
		m.OS = strings.Trim(v, `"`) + " " + runtime.GOARCH
	}
	return m
}

// procField returns the value of the first "key: value" or "key=value" line.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, sep := range []string{":", "="} {
			if k, v, ok := strings.Cut(line, sep); ok && strings.TrimSpace(k) == key {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

// loadAvg is the 1-minute load average, or "unknown": on a shared machine
// it says how much other work the timings competed with.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
