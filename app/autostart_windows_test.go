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

// The Run key's command starts the tray hidden, the path quoted (it has
// spaces under Program Files).
func TestAutostartEntry(t *testing.T) {
	got := autostartEntry(`C:\Program Files\VRAM Keeper\vramkeeper.exe`)
	if want := `"C:\Program Files\VRAM Keeper\vramkeeper.exe" --hidden`; got != want {
		t.Errorf("entry %s, want %s", got, want)
	}
}
