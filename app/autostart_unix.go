//go:build !windows

package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The autostart entry follows the XDG Autostart spec: a .desktop file in
// $XDG_CONFIG_HOME/autostart (default ~/.config/autostart).

func autostartPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("autostart: %w", err)
	}
	return filepath.Join(dir, "autostart", AppID+".desktop"), nil
}

func autostartEnabled() bool {
	p, err := autostartPath()
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// autostartEntry is the .desktop file that starts exe on login, in the
// tray only: nobody wants a window popping up at every login.
func autostartEntry(exe string) string {
	if strings.ContainsAny(exe, " \t\"'\\") {
		exe = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(exe) + `"`
	}
	return "[Desktop Entry]\nType=Application\nName=VRAM Keeper\n" +
		"Comment=Keep local Ollama models inside a VRAM budget\n" +
		"Exec=" + exe + " --hidden\nIcon=" + AppID + "\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
}

// setAutostart writes or removes the autostart entry.
func setAutostart(on bool) error {
	p, err := autostartPath()
	if err != nil {
		return err
	}
	if !on {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("autostart: %w", err)
		}
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("autostart: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("autostart: %w", err)
	}
	if err := os.WriteFile(p, []byte(autostartEntry(exe)), 0o644); err != nil {
		return fmt.Errorf("autostart: %w", err)
	}
	return nil
}
