package manager_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// A pull reports its progress, and once it returns the model is listed
// with an estimate and the history says it was downloaded; a cancelled
// pull lists nothing; a name the registry lacks is an unknown model.
func TestPull(t *testing.T) {
	rt := newFakeRuntime()
	rt.Offer("llama3.2:1b", 1.2, []string{"completion", "tools"})
	rt.Offer("qwen2.5:0.5b", 0.5, nil)
	m := start(t, rt, manager.Options{})
	ctx := ctxT(t)

	var done []uint64
	err := m.Pull(ctx, serving.PullRequest{Name: "llama3.2:1b"}, func(p serving.PullProgress) {
		if p.Total > 0 {
			done = append(done, p.Completed)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) < 3 || done[0] != 0 || !slices.IsSorted(done) {
		t.Errorf("progress %v: want bytes from 0 up", done)
	}
	v, ok := m.Snapshot().Model("llama3.2:1b")
	if !ok || v.EstimateBytes == 0 || v.Loaded {
		t.Errorf("after the pull: listed %v, %+v", ok, v)
	}
	h := m.History()
	if i := slices.IndexFunc(h, func(e manager.Event) bool { return e.Kind == manager.EventPulled }); i < 0 ||
		h[i].Model != "llama3.2:1b" || h[i].Bytes == 0 {
		t.Errorf("history %+v has no pull of llama3.2:1b with its size", h)
	}

	// Cancelled halfway: nothing listed, nothing recorded.
	gate := make(chan struct{})
	rt.SetPullGate(gate)
	pctx, cancel := context.WithCancel(ctx)
	err = m.Pull(pctx, serving.PullRequest{Name: "qwen2.5:0.5b"}, func(p serving.PullProgress) {
		if p.Total > 0 && p.Completed > 0 {
			cancel() // seen halfway: the user cancels
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled pull: %v", err)
	}
	if _, ok := m.Snapshot().Model("qwen2.5:0.5b"); ok {
		t.Error("a cancelled pull is listed")
	}
	close(gate)

	if err := m.Pull(ctx, serving.PullRequest{Name: "nope:1b"}, nil); !errors.Is(err, manager.ErrModelUnknown) {
		t.Errorf("a name the registry lacks: %v", err)
	}
	if err := m.Pull(ctx, serving.PullRequest{Name: " "}, nil); !errors.Is(err, manager.ErrModelUnknown) {
		t.Errorf("no name: %v", err)
	}
}
