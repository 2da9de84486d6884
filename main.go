// Command vramkeeper keeps local Ollama models inside a VRAM budget: a tray
// app with no arguments, a headless server with "serve", and a CLI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/vramkeeper/vramkeeper/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, desktop)
	stop()
	os.Exit(code)
}

// desktop is replaced when the app package is wired in.
var desktop cli.Desktop
