package app

import (
	"fmt"
	"os"
	"testing"
)

// isolateAutostart gives the test a Run key value of its own, removed at
// the end, so a real user's entry is never touched.
func isolateAutostart(t *testing.T) {
	t.Setenv("VRAMKEEPER_AUTOSTART_NAME", fmt.Sprintf("VRAM Keeper test %d", os.Getpid()))
	t.Cleanup(func() { _ = setAutostart(false) })
}

// autostartMark is in every entry: the tray starts hidden.
const autostartMark = "--hidden"

func readAutostart() (string, error) { return autostartCommand() }
