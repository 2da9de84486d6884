package manager

import (
	"fmt"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// State is where a model is in its life on the card.
type State string

const (
	Idle      State = "idle"
	Loading   State = "loading"
	Loaded    State = "loaded"
	Unloading State = "unloading"
	Failed    State = "failed"
)

// allowed lists the transitions the manager may make; anything else is a
// bug, caught by transition.
var allowed = map[State][]State{
	Idle:      {Loading, Loaded}, // Loaded: adopted from /api/ps
	Failed:    {Loading, Loaded, Idle},
	Loading:   {Loaded, Failed, Idle},
	Loaded:    {Unloading, Idle, Loading}, // Idle: gone from /api/ps; Loading: reload at another context
	Unloading: {Idle, Loaded},             // Loaded: the unload failed
}

// model is the owner goroutine's record of one model: what the server says
// of it (catalogue data), what follows from that and the settings
// (derived), and where it is now (live). Only the owner touches it.
type model struct {
	inst       Installed
	det        Details
	hasDetails bool
	showErr    error

	derived
	live
}

// derived is recomputed by catalogue.evaluate when the details or the
// settings change.
type derived struct {
	paramsB  float64
	priority int
	numCtx   int // the context length it is loaded with unless asked otherwise
	est      estimate.Breakdown
	estErr   string
	pinned   bool
}

// live is the model's place on the card and its use. Comparable, so the
// snapshot can tell when it changed.
type live struct {
	state     State
	lastUsed  time.Time
	uses      int
	credit    float64 // eviction policy's value
	size      uint64  // measured by the server while loaded
	onGPU     bool    // the server reported VRAM for it
	loadedCtx int
	lastErr   string
}

func (m *model) transition(to State) error {
	if m.state == to {
		return nil
	}
	for _, s := range allowed[m.state] {
		if s == to {
			m.state = to
			return nil
		}
	}
	return fmt.Errorf("model %s: invalid transition %s -> %s", m.inst.Name, m.state, to)
}

// onCard reports whether the model occupies memory now.
func (m *model) onCard() bool { return m.state == Loaded || m.state == Unloading }
