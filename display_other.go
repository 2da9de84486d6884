//go:build !linux

package main

// noDisplay: Windows and macOS always have a desktop for the window.
func noDisplay() error { return nil }
