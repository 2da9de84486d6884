// Package keeper declares VRAM Keeper as its clients see it: the tray, the
// window, the command line and the management API all hold one Keeper,
// whether it is the manager in this process (*manager.Manager) or a
// running instance through its API (*client.Remote). Reads answer at once
// from memory (the manager's published copy, or the Remote's cache that
// follows the instance's events); every call that waits takes a context;
// a settings change is a patch value, which crosses the wire whole.
package keeper

import (
	"context"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/serving"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// Keeper is the one facade of the manager.
type Keeper interface {
	// Snapshot is the state now: models, card, budget, settings.
	Snapshot() manager.Snapshot
	// History is the recent events, oldest first.
	History() []manager.Event
	// Subscribe delivers events as they happen until cancel is called; a
	// subscriber that falls behind misses events (its channel may close).
	Subscribe(buf int) (events <-chan manager.Event, cancel func())
	// Timeline is the poll samples and marks after since (all for zero).
	Timeline(ctx context.Context, since time.Time) (timeline.Window, error)

	// BestModelForTask loads (evicting as needed) and returns the best
	// model for a task and role.
	BestModelForTask(ctx context.Context, task, role string) (manager.Choice, error)
	// Plan answers what loading a model, or the best model for a task,
	// would do now (which model, at which context, what it would evict,
	// whether it fits at all), changing nothing.
	Plan(ctx context.Context, req manager.PlanRequest) (manager.Plan, error)
	// LoadAt loads a model at numCtx tokens (0: the model's own).
	LoadAt(ctx context.Context, name string, numCtx int, reason string) (manager.LoadResult, error)
	Unload(ctx context.Context, name string) error
	SetPinned(ctx context.Context, name string, pinned bool) error
	SetPaused(ctx context.Context, paused bool) error
	// Yield gives the GPU back; Restore puts the same models back.
	Yield(ctx context.Context) ([]string, error)
	Restore(ctx context.Context) ([]string, error)
	// Apply changes the settings the patch names.
	Apply(ctx context.Context, p manager.SettingsPatch) error
	// Pull downloads a model through Ollama, calling progress (may be
	// nil) with each update; once it returns the model is listed.
	// Cancelling ctx stops it and installs nothing.
	Pull(ctx context.Context, req serving.PullRequest, progress func(serving.PullProgress)) error
}

var _ Keeper = (*manager.Manager)(nil)
