package app

import (
	"log/slog"
	"os/exec"
	"testing"
	"time"
)

// One window at a time: opening again while it runs starts nothing, and
// stop ends it; once it has exited, opening starts a new one.
func TestWindowProc(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep(1)")
	}
	started := 0
	newCmd := func() *exec.Cmd { started++; return exec.Command("sleep", "30") }
	var w windowProc
	log := slog.New(slog.DiscardHandler)
	for range 2 {
		if err := w.open(newCmd, log); err != nil {
			t.Fatal(err)
		}
	}
	if started != 1 {
		t.Fatalf("started %d windows, want 1", started)
	}
	begin := time.Now()
	w.stop(log)
	if d := time.Since(begin); d > windowStopWait {
		t.Errorf("stop took %s: SIGTERM ignored?", d)
	}
	select {
	case <-w.done:
	default:
		t.Fatal("stop returned with the window running")
	}
	if err := w.open(newCmd, log); err != nil {
		t.Fatal(err)
	}
	w.stop(log)
	if started != 2 {
		t.Errorf("started %d windows after a close and an open, want 2", started)
	}
	w.stop(log) // stopping a closed window is harmless
}
