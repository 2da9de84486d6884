// Package mgrtest runs a manager for the length of a test.
package mgrtest

import (
	"context"
	"testing"

	"github.com/vramkeeper/vramkeeper/manager"
)

// Start builds a manager from opt and runs it until the test ends; a Run
// that returns an error fails the test. It does not wait for discovery:
// callers Refresh when they need the catalogue.
func Start(t testing.TB, opt manager.Options) *manager.Manager {
	t.Helper()
	m, err := manager.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager Run: %v", err)
		}
	})
	return m
}
