//go:build !windows

package app

import (
	"os"
	"strings"
	"testing"
)

// isolateAutostart points the autostart entry at a temp folder.
func isolateAutostart(t *testing.T) { t.Setenv("XDG_CONFIG_HOME", t.TempDir()) }

// autostartMark is in every entry: the command it starts.
const autostartMark = "Exec="

func readAutostart() (string, error) {
	p, err := autostartPath()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	return string(b), err
}

func TestAutostartEntry(t *testing.T) {
	got := autostartEntry("/opt/VRAM Keeper/vramkeeper")
	want := "Exec=\"/opt/VRAM Keeper/vramkeeper\" --hidden\n"
	if !strings.Contains(got, want) || !strings.Contains(got, "[Desktop Entry]\n") {
		t.Errorf("entry:\n%s", got)
	}
}
