package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
)

// peakRSS is a process's peak resident memory (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// TestManyLargeBodies: 40 clients at once each send a 31 MiB generation
// body (it took 4.5 GB of serve's memory). The bodies read whole at once
// are bounded (128 MiB across requests): those past it are told 503 with
// Retry-After, the others get their answer (here: the model is not
// installed), and serve's peak memory stays a small multiple of the bound.
func TestManyLargeBodies(t *testing.T) {
	srv := ollamatest.Start(t)
	dir := t.TempDir()
	addr := ollamatest.FreeAddrT(t)
	p := startServe(t, "--ollama", srv.URL.String(), "--listen", addr, "--state-dir", filepath.Join(dir, "state"),
		"--config", filepath.Join(dir, "none.toml"), "--budget", "1GiB")
	waitAPI(t, addr, p)
	before := peakRSS(t, p.cmd.Process.Pid)
	body := []byte(`{"model":"absent","stream":false,"prompt":"` + strings.Repeat("a", 31<<20) + `"}`)
	const clients = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range clients {
		wg.Go(func() {
			status := 0
			resp, err := http.Post("http://"+addr+"/api/generate", "application/json", bytes.NewReader(body))
			if err == nil {
				resp.Body.Close()
				status = resp.StatusCode
				if status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
			}
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	peak := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("%d clients × %d MiB: answers %v; serve's peak RSS %d MiB (%d MiB before)", clients, len(body)>>20, statuses, peak>>20, before>>20)
	if statuses[http.StatusNotFound]+statuses[http.StatusServiceUnavailable] != clients {
		t.Errorf("answers %v, want each 404 (model not installed) or 503 (too many bodies at once)", statuses)
	}
	if statuses[http.StatusNotFound] == 0 {
		t.Errorf("answers %v: none was read", statuses)
	}
	// A generous bound: the garbage of bodies done waits for the collector;
	// without the bound on bodies in flight the peak was 5 GB.
	if limit := uint64(1 << 30); peak > limit {
		t.Errorf("serve's peak RSS %d MiB, want under %d MiB", peak>>20, limit>>20)
	}
}
