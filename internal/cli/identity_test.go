package cli_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vramkeeper/vramkeeper/internal/cli"
	"github.com/vramkeeper/vramkeeper/manager"
)

// flag returns the value after name in args.
func flag(args []string, name string) string {
	i := slices.Index(args, name)
	return args[i+1]
}

// Two instances configured with one listen address: a command for the
// second never lists or changes the first one's models, whichever
// answers there; one given the first's Ollama from another state folder
// is refused, since two managers must not share an Ollama.
func TestCommandsOnlyUseTheirOwnInstance(t *testing.T) {
	first := startInstance(t)
	listen := flag(first.args, "--listen")
	dir := t.TempDir()
	second := []string{"--listen", listen, "--state-dir", filepath.Join(dir, "state"), "--config", filepath.Join(dir, "none.toml"),
		"--ollama", "127.0.0.1:2"}
	cmd := func(args ...string) (int, string, string) { return run(t, append(args, second...)...) }

	code, out, errs := cmd("models")
	if strings.Contains(out+errs, "llama3.2:1b") || code != cli.ExitUnreachable {
		t.Errorf("models for another Ollama: exit %d, stdout %q, stderr %q; want its own (unreachable) server, none of the first's models", code, out, errs)
	}
	code, out, errs = cmd("load", "llama3.2:1b")
	if code == cli.ExitOK || len(first.rt.RunningNames()) != 0 {
		t.Errorf("load for another Ollama: exit %d (%q %q); the first instance runs %v", code, out, errs, first.rt.RunningNames())
	}
	if slices.ContainsFunc(first.m.History(), func(e manager.Event) bool { return e.Model == "llama3.2:1b" }) {
		t.Errorf("the first instance's history has the second's command: %v", first.m.History())
	}

	// The first one's Ollama, from another state folder.
	code, _, errs = run(t, "models", "--listen", listen, "--state-dir", filepath.Join(dir, "other"),
		"--config", filepath.Join(dir, "none.toml"), "--ollama", flag(first.args, "--ollama"))
	if code != cli.ExitAnotherInstance || !strings.Contains(errs, "--state-dir "+flag(first.args, "--state-dir")) {
		t.Errorf("same Ollama, other state folder: exit %d, stderr %q; want %d naming the instance's --state-dir", code, errs, cli.ExitAnotherInstance)
	}

	// And the instance for that Ollama and folder is used as before.
	if code, out, errs := first.run(t, "models"); code != cli.ExitOK || !strings.Contains(out, "llama3.2:1b") {
		t.Errorf("models for the first: exit %d %q %q", code, out, errs)
	}
}

// A `serve` whose address another instance holds says which (PID, state
// folder) and what to do.
func TestServeSaysWhoHoldsItsAddress(t *testing.T) {
	first := startInstance(t)
	listen := flag(first.args, "--listen")
	dir := t.TempDir()
	code, _, errs := run(t, "serve", "--listen", listen, "--state-dir", filepath.Join(dir, "state"),
		"--config", filepath.Join(dir, "none.toml"), "--ollama", "127.0.0.1:2")
	for _, want := range []string{"could not listen on " + listen, "another VRAM Keeper (PID ", flag(first.args, "--state-dir"), "--listen "} {
		if !strings.Contains(errs, want) {
			t.Errorf("serve on a taken address: exit %d, stderr %q, does not say %q", code, errs, want)
		}
	}
	if code == cli.ExitOK {
		t.Error("serve on a taken address exited 0")
	}
}
