//go:build !windows

package config

import (
	"runtime"
	"testing"
)

func TestDefaultDirs(t *testing.T) {
	tests := []struct {
		name, xdg, home, want string
	}{
		{"xdg set", "/xdg/state", "/home/u", "/xdg/state/vramkeeper"},
		{"xdg relative ignored", "rel/state", "/home/u", "/home/u/.local/state/vramkeeper"},
		{"xdg unset", "", "/home/u", "/home/u/.local/state/vramkeeper"},
	}
	if runtime.GOOS == "plan9" {
		t.Skip("HOME-based layout")
	}
	for _, tt := range tests {
		t.Setenv("XDG_STATE_HOME", tt.xdg)
		t.Setenv("HOME", tt.home)
		got, err := DefaultStateDir()
		if err != nil || got != tt.want {
			t.Errorf("%s: DefaultStateDir = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	if got, err := DefaultPath(); runtime.GOOS == "linux" && (err != nil || got != "/cfg/vramkeeper/config.toml") {
		t.Errorf("DefaultPath = %q, %v", got, err)
	}
}
