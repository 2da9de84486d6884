package manager

import (
	"fmt"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
	"github.com/vramkeeper/vramkeeper/manager/serving"
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

// model is the catalogue's record of one model: what the server says of it,
// what follows from that and the settings (derived), and its files in the
// page cache. Where it is on the card and its use are the scheduler's
// (slot). Only the owner goroutine touches it.
type model struct {
	inst       serving.Installed
	det        serving.Details
	hasDetails bool // det holds enough to rank the model
	// detailed: det is /api/show's answer, enough to estimate it; without
	// it det comes from the list alone, and showing marks a read of
	// /api/show on its way.
	detailed, showing bool
	showErr           error

	derived
	files
	// pub is the view the last snapshot showed, at in its list.
	pub *pubView
	at  int
}

// derived is recomputed by catalogue.evaluate when the details or the
// settings change.
type derived struct {
	paramsB  float64
	priority int
	numCtx   int  // the context length it is loaded with unless asked otherwise
	ctxAuto  bool // its context is picked at each load to fit the room
	trained  int  // the longest context it was trained for (0: unknown)
	est      estimate.Breakdown
	estErr   string
	// perToken is what each token of context adds to est, so the largest
	// context that fits a room is found without estimating each.
	perToken float64
	// need is what it takes at numCtx: measured at an earlier load
	// (calibrated) or estimated.
	need       uint64
	calibrated bool
	pinned     bool
}

// live is the model's place on the card, as the scheduler decides it.
type live struct {
	state     State
	size      uint64 // measured by the server while loaded
	onGPU     bool   // the server reported VRAM for it
	loadedCtx int
	adopted   bool // loaded by another client, at a context of its choosing
	lastErr   string
	// cpuShare is the part of it Ollama put on the CPU (0-1) when a GPU
	// is there; 0 when all of it is on the GPU or there is no GPU.
	cpuShare float64
	// changed is the scheduler's count of transitions at its last one.
	changed uint64
}

// files are what the owner knows of the model's files: warmth is the part
// in the page cache (0-1), so its next load reads RAM; remoteFiles: they
// cannot be read here.
type files struct {
	warmth      float64
	remoteFiles bool
}

// use is how the model has been used: every request changes it, so a
// snapshot shows it at the next poll rather than at each request.
type use struct {
	lastUsed time.Time
	uses     int
	credit   float64 // eviction policy's value
}

func (l *live) transition(to State) error {
	if l.state == to {
		return nil
	}
	for _, s := range allowed[l.state] {
		if s == to {
			l.state = to
			return nil
		}
	}
	return fmt.Errorf("invalid transition %s -> %s", l.state, to)
}

// onCard reports whether the model occupies memory now.
func (l live) onCard() bool { return l.state == Loaded || l.state == Unloading }
