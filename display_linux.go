package main

import (
	"errors"
	"os"
)

// noDisplay: without a display the GUI toolkit panics deep inside; say
// what to do.
func noDisplay() error {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return errors.New("no display (DISPLAY and WAYLAND_DISPLAY are unset): run `vramkeeper serve` for headless use")
	}
	return nil
}
