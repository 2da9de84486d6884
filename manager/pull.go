package manager

import (
	"context"
	"fmt"
	"strings"

	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// Pull downloads a model through the server (Ollama's /api/pull), then
// lists the models again, so that it shows, with its estimate, once Pull
// returns. progress (nil for none) gets each update as the server sends
// it. A pull loads and evicts nothing; the history records it, which the
// tray notifies. Cancelling ctx stops the download and installs nothing.
func (m *Manager) Pull(ctx context.Context, req serving.PullRequest, progress func(serving.PullProgress)) error {
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		return fmt.Errorf("pull: no model named: %w", ErrModelUnknown)
	}
	sizes := map[string]uint64{} // per file, for the history
	err := m.rt.Pull(ctx, req, func(p serving.PullProgress) {
		if p.Digest != "" && p.Total > 0 {
			sizes[p.Digest] = p.Total
		}
		if progress != nil {
			progress(p)
		}
	})
	if err != nil {
		return fmt.Errorf("pulling %s: %w", req.Name, err)
	}
	if err := m.Refresh(ctx); err != nil {
		return fmt.Errorf("pulled %s, but listing the models again failed: %w", req.Name, err)
	}
	var total uint64
	for _, n := range sizes {
		total += n
	}
	e := Event{Kind: EventPulled, Model: m.canonical(req.Name), Bytes: total}
	// The owner records history (the event changes no snapshot); wait for
	// it (the answer follows the event), so that the history has it when
	// Pull returns.
	reply := make(chan error, 1)
	return m.ask(ctx, evRead{f: func() { m.emit(e); m.wake(reply, nil) }}, reply)
}
