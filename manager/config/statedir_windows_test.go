package config

import "testing"

// Settings roam with the profile (%APPDATA%); state describes this machine
// (%LOCALAPPDATA%).
func TestDefaultDirs(t *testing.T) {
	tests := []struct {
		name, local, want string
		ok                bool
	}{
		{"local app data", `C:\Users\u\AppData\Local`, `C:\Users\u\AppData\Local\vramkeeper`, true},
		{"unset", "", "", false},
		{"relative ignored", `AppData\Local`, "", false},
	}
	for _, tt := range tests {
		t.Setenv("LOCALAPPDATA", tt.local)
		got, err := DefaultStateDir()
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%s: DefaultStateDir = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	t.Setenv("APPDATA", `C:\Users\u\AppData\Roaming`)
	if got, err := DefaultPath(); err != nil || got != `C:\Users\u\AppData\Roaming\vramkeeper\config.toml` {
		t.Errorf("DefaultPath = %q, %v", got, err)
	}
}
