package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultStateDir is where state that is not configuration lives (usage
// history, measured sizes, the instance lock): %LOCALAPPDATA%\vramkeeper,
// which stays on this machine while %APPDATA% (the config) roams: the
// state describes this machine's card and Ollama.
func DefaultStateDir() (string, error) {
	d := os.Getenv("LOCALAPPDATA")
	if d == "" || !filepath.IsAbs(d) {
		return "", fmt.Errorf("state directory: %w", errors.New("%LOCALAPPDATA% is not set"))
	}
	return filepath.Join(d, "vramkeeper"), nil
}
