package main

import (
	"os/exec"
	"testing"
)

// readOnlyCommand: a read-only folder is the Unix case of the issue; the
// Windows tests do not run the binary against it.
func readOnlyCommand(t *testing.T, _ string, _ []string, _ ...string) *exec.Cmd {
	t.Skip("a read-only state folder is tested on Unix")
	return nil
}
