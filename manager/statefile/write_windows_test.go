package statefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// NTFS refuses to replace a file another process has open for reading
// (Go opens files without FILE_SHARE_DELETE): Save must wait for the reader
// rather than fail at once, and give up cleanly when it never lets go.
func TestSaveOverAnOpenFile(t *testing.T) {
	tests := []struct {
		name      string
		closeWait int // the wait after which the reader closes; -1: never
		wantErr   bool
	}{
		{"reader closes during the retries", 1, false},
		{"reader keeps it open", -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			if err := Save(path, map[string]int{"old": 1}); err != nil {
				t.Fatal(err)
			}
			r, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			tmp := filepath.Join(dir, ".state.json.new")
			if err := os.WriteFile(tmp, []byte(`{"new":2}`), 0o600); err != nil {
				t.Fatal(err)
			}
			tries := 0
			err = retryInUse(func() error { tries++; return moveFile(tmp, path) }, 4, func(i int) {
				if i == tt.closeWait {
					r.Close()
				}
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("move: %v (after %d tries), want error %v", err, tries, tt.wantErr)
			}
			if tries < 2 {
				t.Errorf("%d tries: the open file did not block the first move", tries)
			}
			b, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			want := `"old"`
			if !tt.wantErr {
				want = `"new"`
			}
			if !strings.Contains(string(b), want) {
				t.Errorf("file holds %s, want %s in it", b, want)
			}
			if tt.wantErr && !strings.Contains(err.Error(), "in use") {
				t.Errorf("error %q does not say the file is in use", err)
			}
		})
	}
}
