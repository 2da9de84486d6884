package ollamatest_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// groupAlive reports whether a process of the group led by pid still runs
// (zombies, killed and waiting for a reaper, do not count).
func groupAlive(pid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		_, rest, ok := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if !ok || len(f) < 3 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg == pid && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}
