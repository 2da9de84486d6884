//go:build !windows

package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// DefaultStateDir is where state that is not configuration lives (usage
// history, logs): $XDG_STATE_HOME/vramkeeper, or ~/.local/state/vramkeeper
// when XDG_STATE_HOME is unset or not absolute (the XDG spec says to ignore
// relative values).
func DefaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "vramkeeper"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "vramkeeper"), nil
}
