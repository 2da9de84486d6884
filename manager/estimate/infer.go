package estimate

import (
	"errors"
	"fmt"
	"math"
)

// Stamped reports whether a server version names a release. A build from
// source answers 0.0.0 (version.Version unset), which says nothing of its
// accounting; so does an empty or unparseable version.
func Stamped(version string) bool {
	major, minor, ok := majorMinor(version)
	return ok && (major > 0 || minor > 0)
}

// Generations are the accountings modelled, oldest first.
var Generations = []Generation{TwoEngines, TwoEnginesV018, LlamaServer}

// Reported is the part of an estimate the server reports in /api/ps for
// the model (size_vram on a GPU, size on the CPU): the total without the
// driver's overhead and, on a GPU, the projector no server counts.
func (b Breakdown) Reported(d Device) uint64 {
	r := b.Total - b.Overhead
	if d == GPU {
		r -= b.Projector
	}
	return r
}

// InferGeneration returns the generation whose accounting of m under o
// comes closest to measured, what the server reported for the model after
// loading it, and that accounting's relative error. Generations that
// account for m alike tie; the newest of them wins, as an unknown server is
// most likely a current one (ParseGeneration).
func InferGeneration(m Model, o Options, measured uint64) (Generation, float64, error) {
	if measured == 0 {
		return 0, 0, errors.New("infer generation: nothing measured")
	}
	best, bestErr := Generation(-1), math.Inf(1)
	var errs []error
	for _, g := range Generations {
		o.Generation = g
		b, err := Estimate(m, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rel := math.Abs(float64(b.Reported(o.Device))-float64(measured)) / float64(measured)
		if rel <= bestErr {
			best, bestErr = g, rel
		}
	}
	if best < 0 {
		return 0, 0, fmt.Errorf("infer generation: %w", errors.Join(errs...))
	}
	return best, bestErr, nil
}
