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

// Inferred is what a measured load says of a server's accounting.
type Inferred struct {
	// Generation is the one whose accounting came closest to the
	// measurement; RelErr is how far it was.
	Generation Generation
	RelErr     float64
	// Alike are the generations that account for the model exactly as
	// Generation does (itself included), oldest first: the load cannot
	// tell them apart.
	Alike []Generation
}

// String says it: "v0.17 or v0.18-v0.29" when the load could not tell.
func (in Inferred) String() string {
	var s string
	for i, g := range in.Alike {
		if i > 0 {
			s += " or "
		}
		s += g.String()
	}
	if s == "" {
		return in.Generation.String()
	}
	return s
}

// InferGeneration returns the generation whose accounting of m under o
// comes closest to measured, what the server reported for the model after
// loading it. Generations that account for m alike tie; the newest of them
// wins, as an unknown server is most likely a current one
// (ParseGeneration).
func InferGeneration(m Model, o Options, measured uint64) (Inferred, error) {
	if measured == 0 {
		return Inferred{}, errors.New("infer generation: nothing measured")
	}
	best := Inferred{Generation: -1, RelErr: math.Inf(1)}
	reported := map[Generation]uint64{}
	var errs []error
	for _, g := range Generations {
		o.Generation = g
		b, err := Estimate(m, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		reported[g] = b.Reported(o.Device)
		rel := math.Abs(float64(reported[g])-float64(measured)) / float64(measured)
		if rel <= best.RelErr {
			best.Generation, best.RelErr = g, rel
		}
	}
	if best.Generation < 0 {
		return Inferred{}, fmt.Errorf("infer generation: %w", errors.Join(errs...))
	}
	for _, g := range Generations {
		if r, ok := reported[g]; ok && r == reported[best.Generation] {
			best.Alike = append(best.Alike, g)
		}
	}
	return best, nil
}
