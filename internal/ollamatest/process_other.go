//go:build !unix

package ollamatest

import (
	"io/fs"
	"os/exec"
)

// executable: Windows keeps no execute bit (Go reports 0666 or 0444); the
// system decides by the file when it starts it.
func executable(fs.FileMode) bool { return true }

func setProcAttr(*exec.Cmd) {}

func terminate(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
