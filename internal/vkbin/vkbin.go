// Package vkbin builds the vramkeeper binary once per test process, for the
// tests that run it as a user would (the root package's, tests/clients).
package vkbin

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Build state, once per test process: a test binary is one process, and
// its tests share the one build.
var (
	once sync.Once
	path string
	err  error
)

// Path builds vramkeeper (the module's main package, from wherever the
// test runs) the first time it is called and returns the binary; -short
// skips the test instead, as a build takes a while.
func Path(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		// The tests compiled for Windows run under Wine, where no Go
		// toolchain is; the Windows tier runs the cross-built binary itself.
		t.Skip("builds the binary and needs the go command:", err)
	}
	once.Do(func() {
		dir, derr := os.MkdirTemp("", "vramkeeper-bin-")
		if derr != nil {
			err = derr
			return
		}
		path = filepath.Join(dir, "vramkeeper")
		out, berr := exec.Command("go", "build", "-o", path, "github.com/vramkeeper/vramkeeper").CombinedOutput()
		if berr != nil {
			err = errors.New(string(out))
		}
	})
	if err != nil {
		t.Fatalf("go build: %v", err)
	}
	return path
}

// Remove deletes the binary; TestMain calls it after the tests ran.
func Remove() {
	if path != "" {
		os.RemoveAll(filepath.Dir(path))
	}
}
