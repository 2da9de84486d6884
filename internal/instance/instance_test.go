package instance

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOneHolderPerFolder(t *testing.T) {
	dir := t.TempDir()
	first := Info{PID: 4242, Mode: "serve", API: "127.0.0.1:11435", Ollama: "http://127.0.0.1:11434", Started: time.Now()}
	l, err := Acquire(dir, first)
	if err != nil {
		t.Fatal(err)
	}
	// A second taker (flock locks belong to open files, so this process
	// stands in for another) is refused and told who holds the folder.
	_, err = Acquire(dir, Info{PID: 1, Mode: "tray"})
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second Acquire: %v, want a HeldError", err)
	}
	if held.Holder.PID != 4242 || held.Holder.API != "127.0.0.1:11435" {
		t.Fatalf("holder %+v", held.Holder)
	}
	for _, want := range []string{"pid 4242", "http://127.0.0.1:11435", "http://127.0.0.1:11434", dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	// Another folder (another Ollama) is free.
	other, err := Acquire(t.TempDir(), Info{PID: 2, Mode: "serve"})
	if err != nil {
		t.Fatalf("another folder: %v", err)
	}
	other.Release()
	// Released, the folder is free again and the record is gone.
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, InfoFile)); !os.IsNotExist(err) {
		t.Errorf("record left behind: %v", err)
	}
	l2, err := Acquire(dir, Info{PID: 3, Mode: "cli"})
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

func TestHeldWithoutRecord(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, Info{PID: 7, Mode: "serve"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	// The record is damaged (or not yet written): the refusal still
	// names the lock.
	if err := os.WriteFile(filepath.Join(dir, InfoFile), []byte(`{"pid":`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir, Info{PID: 8})
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), LockFile) {
		t.Fatalf("got %v", err)
	}
}

func TestStaleRecordOverwritten(t *testing.T) {
	dir := t.TempDir()
	// A holder that crashed left its record; the lock died with it.
	if err := os.WriteFile(filepath.Join(dir, InfoFile), []byte(`{"pid":999999,"mode":"tray"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(dir, Info{PID: 5, Mode: "serve"})
	if err != nil {
		t.Fatalf("a stale record must not block: %v", err)
	}
	defer l.Release()
	if info, err := Read(dir); err != nil || info.PID != 5 {
		t.Fatalf("record %+v %v", info, err)
	}
}

// TestFolderThatCannotBeWritten: a state folder that cannot be created, or
// one that is read-only, is still held by one process: the lock and the
// record stand in beside the temporary files, a second taker is refused
// naming the first, and the caller is told why once.
func TestFolderThatCannotBeWritten(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // where the stand-ins go
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{"cannot be created": filepath.Join(blocker, "state")}
	// Root writes anywhere, and Windows keeps no write bit on folders.
	if os.Geteuid() != 0 && runtime.GOOS != "windows" {
		ro := filepath.Join(t.TempDir(), "read-only")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		dirs["read-only"] = ro
	}
	for name, dir := range dirs {
		t.Run(name, func(t *testing.T) {
			l, err := Acquire(dir, Info{PID: 11, Mode: "serve", API: "127.0.0.1:9", Started: time.Now()})
			if err != nil {
				t.Fatalf("Acquire: %v, want the folder held all the same", err)
			}
			if l.Degraded == nil {
				t.Error("Degraded is nil: the caller is not told the folder cannot be written")
			}
			_, err = Acquire(dir, Info{PID: 12, Mode: "tray"})
			var held *HeldError
			if !errors.As(err, &held) || held.Holder.PID != 11 || held.Holder.API != "127.0.0.1:9" {
				t.Fatalf("second Acquire: %v, want it refused naming the first", err)
			}
			if info, err := Read(dir); err != nil || info.PID != 11 {
				t.Errorf("Read: %+v %v", info, err)
			}
			if err := l.Release(); err != nil {
				t.Fatal(err)
			}
			if _, err := Read(dir); err == nil {
				t.Error("a record outlived its holder")
			}
			l2, err := Acquire(dir, Info{PID: 13})
			if err != nil {
				t.Fatalf("after release: %v", err)
			}
			l2.Release()
		})
	}
}
