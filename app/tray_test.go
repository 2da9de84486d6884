package app

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"
)

// One window at a time: opening again while it runs starts nothing, and
// stop ends it; once it has exited, opening starts a new one.
func TestWindowProc(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	newCmd := func() *exec.Cmd {
		started++
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), fakeOllamaEnv+"=window")
		return cmd
	}
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
		t.Errorf("stop took %s: the window did not close when asked", d)
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

// The tray's Give GPU back and Restore models items each make one manager
// call, and ask for a refresh when it ends.
func TestTrayYieldRestore(t *testing.T) {
	k := newFake(testSnapshot())
	tr := &trayApp{opt: TrayOptions{Keeper: k}, log: slog.New(slog.DiscardHandler), kick: make(chan struct{}, 1)}
	ctx := context.Background()
	for _, tc := range []struct {
		a    Action
		call string
	}{
		{Action{Kind: ActYield}, "yield"},
		{Action{Kind: ActRestore}, "restore"},
	} {
		tr.do(ctx, tc.a)
		tr.calls.Wait()
		if got := k.Calls(); got[len(got)-1] != tc.call {
			t.Errorf("%v: manager calls %v, want %q last", tc.a.Kind, got, tc.call)
		}
		select {
		case <-tr.kick:
		default:
			t.Errorf("%v: no refresh asked for", tc.a.Kind)
		}
	}
	if n := len(k.Calls()); n != 2 {
		t.Errorf("%d manager calls for two clicks", n)
	}
}

// A window that exits says so on closed, for the tray to decide whether
// to quit with it; without a tray icon it does.
func TestWindowClosedWithoutTray(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w := windowProc{closed: make(chan struct{}, 1)}
	log := slog.New(slog.DiscardHandler)
	if err := w.open(func() *exec.Cmd {
		cmd := exec.Command(self, "-test.run=^$") // exits at once, as a closed window
		return cmd
	}, log); err != nil {
		t.Fatal(err)
	}
	<-w.closed
	for _, shown := range []bool{true, false} {
		tr := &trayApp{opt: TrayOptions{TrayShown: func() bool { return shown }}}
		if tr.trayShown() != shown {
			t.Errorf("tray shown %v: trayShown() = %v", shown, !shown)
		}
	}
	if !(&trayApp{}).trayShown() {
		t.Error("without a watch the tray is taken as shown")
	}
}

// While its local API does not serve, the tray's menu says so under its
// status line, beside the line about a restarted Ollama; a notification
// said it once, and notifications may be off.
func TestTrayMenuSaysTheAPIIsDown(t *testing.T) {
	restarted := OllamaStatus{Ours: true, Running: true, Restarts: 1, LastExit: "exit status 2"}
	for _, tc := range []struct {
		name    string
		st      OllamaStatus
		apiDown bool
		want    []string // the disabled lines under the status line
	}{
		{"serving", OllamaStatus{}, false, nil},
		{"API down", OllamaStatus{}, true, []string{apiDownLine}},
		{"API down, Ollama restarted", restarted, true, []string{apiDownLine, OllamaLine(restarted)}},
	} {
		menu := TrayMenu(testSnapshot(), nil, tc.st, tc.apiDown)
		base := Menu(testSnapshot(), nil)
		if len(menu) != len(base)+len(tc.want) || menu[0].Label != base[0].Label {
			t.Errorf("%s: %d entries (want %d), first %q", tc.name, len(menu), len(base)+len(tc.want), menu[0].Label)
			continue
		}
		for i, want := range tc.want {
			if e := menu[1+i]; e.Label != want || !e.Disabled {
				t.Errorf("%s: line %d = %+v, want %q disabled", tc.name, 1+i, e, want)
			}
		}
	}
}
