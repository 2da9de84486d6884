//go:build !windows

package main

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// readOnlyCommand is bin with args, run so that a folder of mode 0555 is
// read-only to it: as the user the test runs as, or as nobody when that
// is root (root writes anywhere).
func readOnlyCommand(t *testing.T, bin string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	if os.Geteuid() == 0 {
		const nobody = 65534
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	return cmd
}
