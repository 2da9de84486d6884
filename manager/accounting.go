package manager

import (
	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// savedTry is when inferSaved last looked: the server's version and the
// catalogue's change count.
type savedTry struct {
	version string
	gen     int
}

// inference is the accounting a measured load matched, on a server whose
// version says nothing (a build from source answers 0.0.0).
type inference struct {
	version string // the server's, when inferred: another server infers anew
	estimate.Inferred
	model string // the model whose load showed it
}

// generation is the accounting estimates follow: the server's version's,
// or, when the version says nothing, the one its first measured load
// matched (the newest until then).
func (c *catalogue) generation() estimate.Generation {
	if !estimate.Stamped(c.version) && c.inferred.model != "" && c.inferred.version == c.version {
		return c.inferred.Generation
	}
	return estimate.ParseGeneration(c.version)
}

// Accounting says which server generation's accounting estimates follow,
// and the model whose load it was inferred from ("" when the server's
// version named it).
func (c *catalogue) accounting() (gen, from string) {
	if estimate.Stamped(c.version) || c.inferred.model == "" || c.inferred.version != c.version {
		return c.generation().String(), ""
	}
	return c.inferred.String(), c.inferred.model
}

// options are the estimator's settings for numCtx spread over devices GPUs.
func (c *catalogue) options(numCtx, devices int) estimate.Options {
	return estimate.Options{NumCtx: numCtx, NumParallel: 1, Device: c.dev, Generation: c.generation(), Devices: devices}
}

// estimateOn estimates md at numCtx on as many cards as it needs: a model
// larger than the largest card is spread over several, and each pays its
// own driver context.
func (c *catalogue) estimateOn(md *model, numCtx int) (estimate.Breakdown, error) {
	b, err := estimate.Estimate(md.det.Meta, c.options(numCtx, 1))
	if err != nil || c.dev != estimate.GPU || len(c.cards) < 2 || b.Total <= c.cards[0] {
		return b, err
	}
	k := spans(c.cards, func(k int) uint64 {
		if k == 1 {
			return b.Total
		}
		bk, err := estimate.Estimate(md.det.Meta, c.options(numCtx, k))
		if err != nil {
			return b.Total
		}
		return bk.Total
	})
	return estimate.Estimate(md.det.Meta, c.options(numCtx, k))
}

// infer learns, from a measured load on a server whose version says
// nothing, the accounting that load matched: every other model's estimate
// then follows it. It reports whether that changed the estimates.
func (c *catalogue) infer(md *model, numCtx int, bytes uint64) bool {
	if estimate.Stamped(c.version) || (c.inferred.model != "" && c.inferred.version == c.version) || !md.detailed || bytes == 0 {
		return false
	}
	in, err := estimate.InferGeneration(md.det.Meta, c.options(numCtx, 1), bytes)
	if err != nil {
		return false
	}
	was := c.generation()
	c.inferred = inference{version: c.version, Inferred: in, model: md.inst.Name}
	c.ch.header() // the snapshot says where the accounting comes from
	return in.Generation != was
}

// inferSaved infers the accounting from a size measured at an earlier
// load on this server (saved with the state), so a restart need not wait
// for a load. It reports whether the estimates changed.
func (c *catalogue) inferSaved() bool {
	if c.version == "" || (c.inferred.model != "" && c.inferred.version == c.version) {
		return false
	}
	// Once per version and change of the models, not after every event
	// (parsing the version is a cost every request would pay).
	tried := savedTry{c.version, c.gen}
	if tried == c.savedTried {
		return false
	}
	c.savedTried = tried
	if estimate.Stamped(c.version) {
		return false
	}
	for _, md := range c.models {
		if !md.detailed {
			continue
		}
		if b, ok := c.calib[calibKey(md.inst.Digest, md.numCtx, c.version)]; ok {
			return c.infer(md, md.numCtx, b)
		}
	}
	return false
}
