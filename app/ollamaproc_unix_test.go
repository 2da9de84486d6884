//go:build !windows

package app

import "syscall"

// killedExit is how a killed server's exit reads.
const killedExit = "killed"

func killHard(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

func running(pid int) bool { return syscall.Kill(pid, 0) == nil }
