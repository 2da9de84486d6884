package wire

import "fmt"

// Instance answers GET /keeper/v1/instance: which VRAM Keeper this is and
// what it manages. A client checks it before it trusts the answers: two
// instances for two Ollama servers (two state folders) may be configured
// with one listen address, and then the one that answers there is not the
// one the command was given.
type Instance struct {
	PID int `json:"pid"`
	// Mode is "tray" or "serve".
	Mode string `json:"mode"`
	// Ollama is the server it manages (its URL, password redacted) and
	// StateDir its state folder (absolute): together, what it manages.
	Ollama   string `json:"ollama"`
	StateDir string `json:"state_dir"`
	Listen   string `json:"listen"`
	// OllamaBin is the `ollama` the tray starts for "Start Ollama"; ""
	// when none is installed (the window then says how to install it).
	// Always "" outside the tray.
	OllamaBin string `json:"ollama_bin,omitempty"`
	// NoTray: the desktop shows no tray icon (no StatusNotifierWatcher on
	// the session bus), so the window is the only way to VRAM Keeper and
	// closing it quits.
	NoTray bool `json:"no_tray,omitempty"`
}

// Manages reports whether the instance manages the Ollama and state folder
// of want.
func (i Instance) Manages(want Instance) bool {
	return i.Ollama == want.Ollama && i.StateDir == want.StateDir
}

// Mismatch says how the instance that answered differs from the one wanted,
// and what to do: "" when it is the one.
func (i Instance) Mismatch(want Instance) string {
	if i.Manages(want) {
		return ""
	}
	return fmt.Sprintf("the VRAM Keeper on %s (PID %d) manages Ollama at %s with the state folder %s, not Ollama at %s with %s",
		i.Listen, i.PID, i.Ollama, i.StateDir, want.Ollama, want.StateDir)
}
