package fakert

import (
	"context"
	"fmt"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// offer is a model the fake's registry has, for Pull.
type offer struct {
	paramsB float64
	caps    []string
}

// Offer puts a model in the fake's registry: Pull installs it as Add does.
func (f *Runtime) Offer(name string, paramsB float64, caps []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.offers == nil {
		f.offers = map[string]offer{}
	}
	f.offers[name] = offer{paramsB, caps}
}

// SetPullGate holds every pull halfway through its download until gate is
// closed (or the pull's context ends), so that tests can see its progress
// and cancel it.
func (f *Runtime) SetPullGate(gate chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pullGate = gate
}

// Pull reports what Ollama's /api/pull does (manifest, one file in two
// steps, verify, write, success) and installs an offered model; a name the
// registry lacks fails as Ollama's does, and a cancelled pull installs
// nothing.
func (f *Runtime) Pull(ctx context.Context, req serving.PullRequest, progress func(serving.PullProgress)) error {
	f.mu.Lock()
	err := f.check()
	o, ok := f.offers[req.Name]
	gate := f.pullGate
	f.mu.Unlock()
	if err != nil {
		return err
	}
	progress(serving.PullProgress{Status: "pulling manifest"})
	if !ok {
		return fmt.Errorf("pull model manifest: file does not exist: %w", manager.ErrModelUnknown)
	}
	size, err := ModelSize(o.paramsB)
	if err != nil {
		return err
	}
	digest := "sha256:" + req.Name
	file := func(done uint64) serving.PullProgress {
		return serving.PullProgress{Status: "pulling " + digest, Digest: digest, Total: size, Completed: done}
	}
	progress(file(0))
	progress(file(size / 2))
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	progress(file(size))
	for _, s := range []string{"verifying sha256 digest", "writing manifest", "success"} {
		progress(serving.PullProgress{Status: s})
	}
	f.Add(req.Name, o.paramsB, o.caps, 1)
	return nil
}
