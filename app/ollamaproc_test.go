package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
)

// The test binary doubles as a fake `ollama serve` when this variable
// says how it should behave: "serve" answers /api/version on OLLAMA_HOST
// until killed, "exit" exits at once with status 3; as a window, "window"
// waits until the tray asks it to close.
const fakeOllamaEnv = "VRAMKEEPER_FAKE_OLLAMA"

func TestMain(m *testing.M) {
	switch os.Getenv(fakeOllamaEnv) {
	case "serve":
		mux := http.NewServeMux()
		mux.HandleFunc("/api/version", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"version":"0.0.0"}`) })
		err := http.ListenAndServe(os.Getenv("OLLAMA_HOST"), mux)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	case "exit":
		os.Exit(3)
	case "window":
		// A window that closes when the tray asks (SIGTERM's default
		// action, or the close event on Windows) or after a minute.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		stop := closeOnRequest(ctx, cancel)
		<-ctx.Done()
		stop()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func fakeServer(t *testing.T, mode, addr string) *OllamaServer {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return NewOllamaServer(OllamaServerOptions{
		Bin: self, URL: "http://" + addr, Env: []string{fakeOllamaEnv + "=" + mode},
		Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, StableAfter: time.Minute,
		MaxQuickExits: 3, ReadyWait: 20 * time.Second, Log: slog.New(slog.DiscardHandler),
	})
}

// waitStatus waits for the server's status to satisfy ok, following its
// change notifications.
func waitStatus(t *testing.T, s *OllamaServer, what string, ok func(OllamaStatus) bool) OllamaStatus {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if st := s.Status(); ok(st) {
			return st
		}
		select {
		case <-s.Changed():
		case <-deadline:
			t.Fatalf("waiting for %s: status %+v", what, s.Status())
		}
	}
}

// TestOllamaRestartedAfterCrash: the server we started is killed; it comes
// back with a new process, the status says it was restarted and why it
// exited, and Stop ends it.
func TestOllamaRestartedAfterCrash(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr := ollamatest.FreeAddrT(t)
	s := fakeServer(t, "serve", addr)
	st, err := s.Start(context.Background())
	if err != nil || !st.Ours || !st.Running || st.PID == 0 {
		t.Fatalf("Start: %+v, %v", st, err)
	}
	first := st.PID
	if err := killHard(first); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, s, "a restart", func(st OllamaStatus) bool { return st.Running && st.Restarts == 1 })
	if st.PID == first || !strings.Contains(st.LastExit, killedExit) {
		t.Fatalf("after the crash: %+v", st)
	}
	if line := OllamaLine(st); !strings.Contains(line, "restarted once") || !strings.Contains(line, killedExit) {
		t.Errorf("tray line %q should say it was restarted and why", line)
	}
	// Start again while ours runs: the same server, answering.
	again, err := s.Start(context.Background())
	if err != nil || again.PID != st.PID {
		t.Fatalf("second Start: %+v, %v", again, err)
	}
	s.Stop()
	if st := s.Status(); st.Running {
		t.Fatalf("after Stop: %+v", st)
	}
	if running(st.PID) {
		t.Fatalf("process %d still runs after Stop", st.PID)
	}
}

// TestOllamaGivesUp: a server that exits at once is restarted with a
// backoff, then given up; Start says why.
func TestOllamaGivesUp(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := fakeServer(t, "exit", ollamatest.FreeAddrT(t))
	defer s.Stop()
	st, err := s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Start of a server that exits: %+v, %v", st, err)
	}
	st = waitStatus(t, s, "giving up", func(st OllamaStatus) bool { return st.GaveUp })
	if st.Restarts != 2 || st.Running {
		t.Fatalf("gave up after %d restarts (%+v), want 2 with MaxQuickExits 3", st.Restarts, st)
	}
	if tip := OllamaTip(st); tip != " · Ollama stopped" {
		t.Errorf("tooltip suffix %q", tip)
	}
}

// TestUsersOllamaUntouched: with a server the user started answering,
// Start starts nothing and Stop stops nothing.
func TestUsersOllamaUntouched(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{}`) }))
	defer users.Close()
	s := fakeServer(t, "exit", strings.TrimPrefix(users.URL, "http://"))
	st, err := s.Start(context.Background())
	if err != nil || st.Ours || !st.External || st.PID != 0 {
		t.Fatalf("Start beside the user's server: %+v, %v", st, err)
	}
	s.Stop()
	if resp, err := http.Get(users.URL + "/api/version"); err != nil {
		t.Fatalf("the user's server was touched: %v", err)
	} else {
		resp.Body.Close()
	}
}

func TestNoBinary(t *testing.T) {
	s := NewOllamaServer(OllamaServerOptions{Bin: "", URL: "http://" + ollamatest.FreeAddrT(t)})
	s.opt.Bin = "" // as when nothing is on PATH
	if _, err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "no ollama binary") {
		t.Fatalf("want a clear error, got %v", err)
	}
}

func TestOllamaTrayWords(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	running := OllamaStatus{Ours: true, Running: true, PID: 10}
	exited := OllamaStatus{Ours: true, LastExit: "signal: killed", NextStart: at}
	gaveUp := OllamaStatus{Ours: true, LastExit: "exit status 1", GaveUp: true}
	restarted := OllamaStatus{Ours: true, Running: true, PID: 11, Restarts: 3, LastExit: "signal: killed"}
	cases := []struct {
		name      string
		prev, cur OllamaStatus
		line, tip string
		note      string // "" for none
	}{
		{"not ours", OllamaStatus{}, OllamaStatus{External: true}, "", "", ""},
		{"running fine", OllamaStatus{}, running, "", "", ""},
		{"exited, restarting", running, exited, "Ollama exited (signal: killed); restarting…", " · Ollama restarting", "Ollama exited"},
		{"back after restarts", exited, restarted, "Ollama restarted 3 times (last exit: signal: killed)", "", ""},
		{"given up", exited, gaveUp, "Ollama keeps exiting; not restarted (exit status 1)", " · Ollama stopped", "Ollama keeps exiting"},
		{"still given up: no second note", gaveUp, gaveUp, "Ollama keeps exiting; not restarted (exit status 1)", " · Ollama stopped", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := OllamaLine(tc.cur); got != tc.line {
				t.Errorf("line %q, want %q", got, tc.line)
			}
			if got := OllamaTip(tc.cur); got != tc.tip {
				t.Errorf("tip %q, want %q", got, tc.tip)
			}
			n, ok := OllamaNote(tc.prev, tc.cur)
			if (tc.note != "") != ok || n.Title != tc.note {
				t.Errorf("note %+v %v, want %q", n, ok, tc.note)
			}
			menu := WithOllamaLine([]MenuEntry{{Label: "VRAM 1 / 7 GiB"}, {Label: "Quit"}}, tc.cur)
			if want := 2 + btoi(tc.line != ""); len(menu) != want || (tc.line != "" && menu[1].Label != tc.line) {
				t.Errorf("menu %+v", menu)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
