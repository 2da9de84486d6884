package ollama_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/internal/registrytest"
	"github.com/vramkeeper/vramkeeper/manager/ollama"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// Pulls against a real Ollama from a local registry: a generated model
// pushed there with `ollama push --insecure` from one server is pulled
// into another with its progress; a pull cancelled halfway installs
// nothing; a name the registry lacks is an unknown model.
func TestPullFromLocalRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two Ollama servers and a registry")
	}
	reg := registrytest.Start(t)
	src := ollamatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bigger := tinyLlama
	bigger.Embd, bigger.FFN = 256, 512 // another file: its download starts from nothing
	src.Create(t, "tiny:latest", tinyLlama)
	src.Create(t, "bigger:latest", bigger)
	for _, m := range []string{"tiny:latest", "bigger:latest"} {
		if err := registrytest.Push(ctx, src.URL, m, reg.Name(m)); err != nil {
			t.Fatal(err)
		}
	}

	dst := ollamatest.Start(t)
	c := ollama.New(dst.URL, nil)
	listed := func() []string {
		list, err := c.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range list {
			names = append(names, m.Name)
		}
		return names
	}

	var files, statuses []string
	var done, total uint64
	err := c.Pull(ctx, serving.PullRequest{Name: reg.Name("tiny:latest"), Insecure: true}, func(p serving.PullProgress) {
		statuses = append(statuses, p.Status)
		if p.Digest != "" && !slices.Contains(files, p.Digest) {
			files = append(files, p.Digest)
		}
		if p.Total >= total { // the weights: the largest file
			done, total = p.Completed, p.Total
		}
	})
	if err != nil {
		t.Fatalf("pull: %v\nollama log:\n%s", err, dst.LogTail())
	}
	if total == 0 || done != total || statuses[len(statuses)-1] != "success" || len(files) < 2 {
		t.Errorf("progress: %d of %d bytes of the weights, files %v, statuses %q", done, total, files, statuses)
	}
	if !slices.Contains(listed(), reg.Name("tiny:latest")) {
		t.Errorf("pulled, but not listed: %v", listed())
	}

	// Held halfway, then cancelled: nothing listed.
	release := reg.Stall()
	defer release()
	pctx, stop := context.WithCancel(ctx)
	halfway := make(chan struct{}, 1)
	pulled := make(chan error, 1)
	go func() {
		pulled <- c.Pull(pctx, serving.PullRequest{Name: reg.Name("bigger:latest"), Insecure: true}, func(p serving.PullProgress) {
			if p.Total > 0 && p.Completed > 0 && p.Completed < p.Total {
				select {
				case halfway <- struct{}{}:
				default:
				}
			}
		})
	}()
	select {
	case <-halfway:
	case err := <-pulled:
		t.Fatalf("the held pull ended: %v", err)
	case <-ctx.Done():
		t.Fatal("no progress from the held pull")
	}
	stop()
	if err := <-pulled; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled pull: %v", err)
	}
	release()
	if slices.Contains(listed(), reg.Name("bigger:latest")) {
		t.Errorf("a cancelled pull is listed: %v", listed())
	}

	err = c.Pull(ctx, serving.PullRequest{Name: reg.Name("nope:latest"), Insecure: true}, func(serving.PullProgress) {})
	if !errors.Is(err, serving.ErrModelUnknown) {
		t.Errorf("a name the registry lacks: %v", err)
	}
	if err := c.Pull(ctx, serving.PullRequest{Name: "no spaces allowed"}, func(serving.PullProgress) {}); !errors.Is(err, serving.ErrModelUnknown) {
		t.Errorf("not a name: %v", err)
	}
}
