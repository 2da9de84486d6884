// Package quietinit silences the standard logger while Go initializes
// packages, and gives it back to main.
//
// Fyne's lang package parses the user's locale in its init, and on a C or
// POSIX locale (LANG=C.UTF-8: containers, servers, CI) it prints three
// "Fyne error: Error parsing user locale C" lines through the standard
// logger, before main runs, in every command of this one binary: the CLI,
// serve and the tray included, which never use the toolkit.
//
// Go initializes packages in import-path order, each once its imports are
// (the spec's "Package initialization", Go 1.21+). This module's path,
// early.invalid/quietinit, sorts before fyne.io/..., and it imports only
// io and log, so its init runs before any of Fyne's: it points the
// standard logger at io.Discard, and main calls Restore first thing. The
// ".invalid" domain cannot be fetched: go.mod replaces it with this
// folder.
package quietinit

import (
	"io"
	"log"
)

var saved = log.Writer()

func init() { log.SetOutput(io.Discard) }

// Restore gives the standard logger its output back; main calls it before
// anything else.
func Restore() { log.SetOutput(saved) }
