package manager

import (
	"errors"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// connection is what the owner knows of the server and the card: whether
// Ollama answers, its version, and the last reading of the card.
type connection struct {
	known, up, everUp bool
	version           string
	err               string // why the server is unreachable
	vram              VRAM
	vramErr           string
	// oursAtRead is what our models held when vram was read, so that a
	// model unloaded since does not count as other programs' until the
	// next reading.
	oursAtRead uint64
}

// setUp records whether the server answered; it returns the event to emit
// when that changed (nil otherwise).
func (c *connection) setUp(up bool, err error) *Event {
	changed := !c.known || c.up != up
	c.known, c.up, c.err = true, up, errString(err)
	if !changed {
		return nil
	}
	if !up {
		why := "Ollama is unreachable"
		if err != nil && !errors.Is(err, ErrUnreachable) {
			why = "Ollama answers with errors"
		}
		return &Event{Kind: EventOllamaDown, Error: errString(err), Reason: why}
	}
	again := c.everUp
	c.everUp = true
	if again {
		return &Event{Kind: EventOllamaUp, Reason: "Ollama is reachable again"}
	}
	return nil
}

// others is what other programs hold on the card, when the driver says:
// what it counts beyond Ollama's processes (the CUDA context is Ollama's,
// not theirs), or beyond our models' reported sizes when it cannot tell.
func (c *connection) others() uint64 {
	v := c.vram
	if !v.Measured() {
		return 0
	}
	ollama := max(v.Ollama, c.oursAtRead)
	return max(v.Used, ollama) - ollama
}

// device is where the estimator should assume models live: on the GPU when
// the driver answers or Ollama reports VRAM for a loaded model (onGPU), on
// the CPU otherwise (no driver and nothing on a GPU: Ollama runs on the CPU).
func (c *connection) device(onGPU bool) estimate.Device {
	if c.vram.Measured() || onGPU {
		return estimate.GPU
	}
	return estimate.CPU
}

func (c *connection) reading() VRAM { return c.vram }
