// Package mgrtest runs a manager for the length of a test.
package mgrtest

import (
	"context"
	"sync"
	"testing"

	"github.com/vramkeeper/vramkeeper/manager"
)

// Start builds a manager from opt and runs it until the test ends; a Run
// that returns an error fails the test. It does not wait for discovery:
// callers Refresh when they need the catalogue.
func Start(t testing.TB, opt manager.Options) *manager.Manager {
	m, _ := Run(t, opt)
	return m
}

// Run is Start with a stop function, for tests that restart the manager:
// stop returns once Run has returned (so its state files are written); it
// may be called again, and the test's end calls it too.
func Run(t testing.TB, opt manager.Options) (*manager.Manager, func()) {
	t.Helper()
	m, err := manager.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager Run: %v", err)
		}
	})
	t.Cleanup(stop)
	return m, stop
}
