package cli_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/cli"
	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/internal/registrytest"
)

// `vramkeeper pull` through a running instance: its progress on stderr (a
// line per step when stderr is not a terminal), the model and what it
// needs on stdout, and the instance lists it; a name the registry lacks
// is exit 4.
func TestPullThroughInstance(t *testing.T) {
	f := startInstance(t)
	f.rt.Offer("qwen2.5:0.5b", 0.5, nil)
	code, out, errs := f.run(t, "pull", "qwen2.5:0.5b")
	if code != cli.ExitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	for _, want := range []string{"pulling qwen2.5:0.5b: Reading the manifest", "pulling qwen2.5:0.5b: 0 B of ", "pulling qwen2.5:0.5b: Done"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errs)
		}
	}
	if !strings.HasPrefix(out, "pulled qwen2.5:0.5b (") || !strings.Contains(out, "fits the budget") {
		t.Errorf("stdout %q", out)
	}
	if _, ok := f.m.Snapshot().Model("qwen2.5:0.5b"); !ok {
		t.Error("the instance does not list the pulled model")
	}
	if code, _, errs := f.run(t, "pull", "nope:1b"); code != cli.ExitUnknownModel || !strings.Contains(errs, "nope:1b") {
		t.Errorf("pull of a name the registry lacks: exit %d, stderr %q", code, errs)
	}
}

// `vramkeeper pull --insecure` with no instance running, from a local
// registry into a real Ollama: the model is installed, and listed.
func TestPullFromRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two Ollama servers and a registry")
	}
	reg := registrytest.Start(t)
	src := ollamatest.Start(t)
	src.Create(t, "tiny:latest", ggufgen.Spec{Arch: "llama", Layers: 2, Embd: 128, Heads: 2, KVHeads: 2, FFN: 256,
		Vocab: ggufgen.MinVocab, ContextLength: 2048, WeightType: "F32"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := registrytest.Push(ctx, src.URL, "tiny:latest", reg.Name("tiny:latest")); err != nil {
		t.Fatal(err)
	}
	dst := ollamatest.Start(t)
	dir := t.TempDir()
	flags := []string{"--ollama", dst.URL.String(), "--state-dir", dir, "--config", filepath.Join(dir, "none.toml"), "--listen", ollamatest.FreeAddrT(t)}
	name := reg.Name("tiny:latest")
	if code, _, errs := run(t, append([]string{"pull", name}, flags...)...); code == cli.ExitOK || !strings.Contains(errs, "http") {
		t.Errorf("pull over plain HTTP without --insecure: exit %d, stderr %q", code, errs)
	}
	code, out, errs := run(t, append([]string{"pull", "--insecure", name}, flags...)...)
	if code != cli.ExitOK || !strings.HasPrefix(out, "pulled "+name) {
		t.Fatalf("pull --insecure: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	if code, out, _ := run(t, append([]string{"models"}, flags...)...); code != cli.ExitOK || !strings.Contains(out, name) {
		t.Errorf("models after the pull: exit %d\n%s", code, out)
	}
}
