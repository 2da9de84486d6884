//go:build unix

package ollamatest

import (
	"io/fs"
	"os/exec"
	"syscall"
)

// executable: some execute bit is set.
func executable(m fs.FileMode) bool { return m&0o111 != 0 }

// setProcAttr puts the server in a process group of its own, led by its PID,
// so killGroup reaches the runner subprocesses it spawns as well.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
}

func terminate(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
}

// killGroup sends SIGKILL to the group whose id is the server's PID.
func killGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
