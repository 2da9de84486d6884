package app

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/windows/registry"
)

// On Windows the tray starts at login from the user's Run key (what the
// installer's "Start at login" writes too), with --hidden: the tray only.

const runKey = `Software\Microsoft\Windows\CurrentVersion\Run`

// autostartName is the Run key's value; VRAMKEEPER_AUTOSTART_NAME moves it
// for tests, which must not touch a real user's entry.
func autostartName() string {
	if n := os.Getenv("VRAMKEEPER_AUTOSTART_NAME"); n != "" {
		return n
	}
	return "VRAM Keeper"
}

func autostartEnabled() bool {
	_, err := autostartCommand()
	return err == nil
}

// autostartCommand is the command line the Run key holds for us.
func autostartCommand() (string, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.QUERY_VALUE)
	if err != nil {
		return "", err
	}
	defer k.Close()
	v, _, err := k.GetStringValue(autostartName())
	return v, err
}

// autostartEntry is the Run key's command line for exe.
func autostartEntry(exe string) string {
	return `"` + strings.ReplaceAll(exe, `"`, "") + `" --hidden`
}

// setAutostart writes or removes the Run key's value.
func setAutostart(on bool) error {
	k, _, err := registry.CreateKey(registry.CURRENT_USER, runKey, registry.SET_VALUE|registry.QUERY_VALUE)
	if err != nil {
		return fmt.Errorf("autostart: %w", err)
	}
	defer k.Close()
	if !on {
		if err := k.DeleteValue(autostartName()); err != nil && !errors.Is(err, registry.ErrNotExist) {
			return fmt.Errorf("autostart: %w", err)
		}
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("autostart: %w", err)
	}
	if err := k.SetStringValue(autostartName(), autostartEntry(exe)); err != nil {
		return fmt.Errorf("autostart: %w", err)
	}
	return nil
}
