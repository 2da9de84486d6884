package manager

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
	"github.com/vramkeeper/vramkeeper/manager/score"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// catalogue is what the owner knows of the installed models: their
// details, what each needs on the card, and the sizes measured at earlier
// loads. Discovery fills it; the scheduler asks it (catalog) and keeps
// where each model is in a record of its own.
type catalogue struct {
	models map[string]*model
	// calib maps calibKey to the bytes the server reported after a real
	// load; it replaces the estimate from then on.
	calib map[string]uint64
	// details caches /api/show answers by digest across restarts.
	details map[string]serving.Details

	// listed: one listing succeeded; listing: one is on its way; listErr:
	// why the last one failed.
	listed, listing bool
	listErr         error

	// gen counts changes of what rankings depend on (the candidates and
	// the tables), so they can be cached until it moves.
	gen int
	// dev is where estimates assume the models run, and version the
	// server's (measured sizes are per version); both set by the owner.
	dev     estimate.Device
	version string
	// ch hears of every change a snapshot shows (the owner's).
	ch *changes
	// cards are the sizes of the cards Ollama uses, largest first (set by
	// the owner); inferred is the accounting a load showed when the
	// version says nothing (accounting.go).
	cards    []uint64
	inferred inference
	restale  bool // the estimates changed beneath the models: evaluate them again
	// savedTried is when inferSaved last looked for a saved measurement.
	savedTried savedTry
}

func newCatalogue(calib map[string]uint64, details map[string]serving.Details) catalogue {
	if calib == nil {
		calib = map[string]uint64{}
	}
	if details == nil {
		details = map[string]serving.Details{}
	}
	return catalogue{models: map[string]*model{}, calib: calib, details: details}
}

// lookup finds a model by name, accepting the ":latest" tag being left off.
func (c *catalogue) lookup(name string) *model {
	if md, ok := c.models[name]; ok {
		return md
	}
	if !strings.Contains(name, ":") {
		return c.models[name+":latest"]
	}
	return nil
}

func (c *catalogue) spec(name string) (spec, bool) {
	md := c.lookup(name)
	if md == nil {
		return spec{}, false
	}
	return spec{name: md.inst.Name, digest: md.inst.Digest, numCtx: md.numCtx, ctxAuto: md.ctxAuto, fit: md.fit(),
		need: md.need, calibrated: md.calibrated, pinned: md.pinned, embedding: isEmbedding(md.det.Capabilities),
		hasDetails: md.hasDetails, detailed: md.detailed, showing: md.showing, showErr: md.showErr, estErr: md.estErr}, true
}

func (c *catalogue) listState() (listed, listing bool, err error) {
	return c.listed, c.listing, c.listErr
}

// needAt is the bytes a model will take at numCtx on the server: the
// measured size of an earlier load there when there is one, the estimate
// otherwise.
func (c *catalogue) needAt(name string, numCtx int) (uint64, bool) {
	md := c.models[name]
	if md == nil {
		return 0, false
	}
	if numCtx == md.numCtx || numCtx == 0 {
		return md.need, md.calibrated
	}
	return c.lookupNeed(md, numCtx)
}

func (c *catalogue) calibrate(name string, numCtx int, bytes uint64) {
	md := c.models[name]
	if md == nil {
		return
	}
	c.calib[calibKey(md.inst.Digest, numCtx, c.version)] = bytes
	if numCtx == md.numCtx {
		md.need, md.calibrated = bytes, true
		c.ch.model(name)
	}
	c.restale = c.infer(md, numCtx, bytes) || c.restale
}

func (c *catalogue) track(name, digest string) bool {
	if c.models[name] != nil {
		return false
	}
	c.models[name] = &model{inst: serving.Installed{Name: name, Digest: digest}}
	c.ch.membership()
	return true
}

func (c *catalogue) lookupNeed(md *model, numCtx int) (uint64, bool) {
	if b, ok := c.calib[calibKey(md.inst.Digest, numCtx, c.version)]; ok {
		return b, true
	}
	if numCtx == md.numCtx || numCtx == 0 {
		return md.est.Total, false
	}
	est, err := c.estimate(md, numCtx)
	if err != nil {
		return md.est.Total, false
	}
	return est.Total, false
}

// evaluate recomputes a model's derived fields after its details or the
// settings change.
func (c *catalogue) evaluate(md *model, set Settings) {
	c.gen++
	c.ch.model(md.inst.Name)
	md.pinned = slices.Contains(set.Pinned, md.inst.Name)
	if !md.hasDetails {
		md.need, md.calibrated = 0, false
		return
	}
	md.paramsB = score.ParseParams(md.det.ParameterSize)
	if md.paramsB == 0 {
		md.paramsB = countParams(md.det.Meta)
	}
	md.priority = score.Priority(md.paramsB)
	md.trained = trainedContext(md.det.Meta)
	if md.trained == 0 {
		md.trained = md.inst.ContextLength
	}
	md.numCtx, md.ctxAuto = contextFor(md.det, set.NumCtx), false
	switch n := set.Contexts[md.inst.Name]; {
	case n == ContextAuto:
		md.ctxAuto = true
	case n > 0:
		md.numCtx = n
		if md.trained > 0 && n > md.trained {
			md.numCtx = md.trained
		}
	}
	if !md.detailed {
		// Listed only: ranked already, estimated once /api/show is read;
		// a size measured at an earlier load still places it.
		md.est, md.estErr, md.perToken = estimate.Breakdown{}, "not read from the server yet", 0
		md.need, md.calibrated = c.lookupNeed(md, md.numCtx)
		if !md.calibrated {
			md.need = 0
		}
		return
	}
	est, err := c.estimate(md, md.numCtx)
	md.est, md.estErr = est, errString(err)
	md.need, md.calibrated = c.lookupNeed(md, md.numCtx)
	md.perToken = 0
	if err == nil {
		if twice, err := c.estimate(md, 2*md.numCtx); err == nil && twice.Total > est.Total {
			md.perToken = float64(twice.Total-est.Total) / float64(md.numCtx)
		}
	}
}

func (c *catalogue) estimate(md *model, numCtx int) (estimate.Breakdown, error) {
	return c.estimateOn(md, numCtx)
}

// ctxFit is what a model needs at each context length: base at numCtx,
// and perToken for each token more or less, up to ceiling.
type ctxFit struct {
	base     uint64
	perToken float64
	numCtx   int
	ceiling  int
}

func (m *model) fit() ctxFit {
	return ctxFit{base: m.est.Total, perToken: m.perToken, numCtx: m.numCtx, ceiling: m.ctxCeiling()}
}

// needAt is what the model needs at n tokens.
func (f ctxFit) needAt(n int) float64 { return float64(f.base) + f.perToken*float64(n-f.numCtx) }

// maxContext is the largest power of two, from minAutoCtx up to what the
// model was trained for, whose need fits room; 0 when none does.
func maxContext(f ctxFit, room uint64) int {
	best := 0
	for n := minAutoCtx; n <= f.ceiling; n *= 2 {
		if f.needAt(n) > float64(room) {
			break
		}
		best = n
	}
	return best
}

// Auto contexts are powers of two between these; a model trained for
// less uses what it was trained for.
const (
	minAutoCtx = 2048
	maxAutoCtx = 1 << 20
)

func (m *model) ctxCeiling() int {
	if m.trained > 0 {
		return min(m.trained, maxAutoCtx)
	}
	return max(m.numCtx, minAutoCtx)
}

// evaluateAll redoes every model, after the settings or the device change.
func (c *catalogue) evaluateAll(set Settings) {
	ch := c.ch
	c.ch = nil // one mark for all
	for _, md := range c.models {
		c.evaluate(md, set)
	}
	c.ch = ch
	c.ch.everyModel()
}

// reevaluate redoes the models the settings' change from old to next
// touches: all of them for a new context length, else those pinned or
// unpinned and those whose own context length changed.
func (c *catalogue) reevaluate(old, next Settings) {
	if old.NumCtx != next.NumCtx {
		c.evaluateAll(next)
		return
	}
	touched := map[string]bool{}
	for _, n := range old.Pinned {
		touched[n] = !slices.Contains(next.Pinned, n)
	}
	for _, n := range next.Pinned {
		touched[n] = touched[n] || !slices.Contains(old.Pinned, n)
	}
	for n, v := range old.Contexts {
		touched[n] = touched[n] || next.Contexts[n] != v
	}
	for n, v := range next.Contexts {
		touched[n] = touched[n] || old.Contexts[n] != v
	}
	for n, t := range touched {
		if md := c.models[n]; t && md != nil {
			c.evaluate(md, next)
		}
	}
}

// contextFor is the context length a model is loaded with: its own
// Modelfile num_ctx when set, the configured one otherwise, never above what
// the model was trained for (Ollama caps it the same way).
func contextFor(d serving.Details, configured int) int {
	n := configured
	if d.NumCtx > 0 {
		n = d.NumCtx
	}
	if max := trainedContext(d.Meta); max > 0 && n > max {
		n = max
	}
	return n
}

func trainedContext(m estimate.Model) int {
	v, ok := m.KV[m.Arch+".context_length"]
	if !ok {
		return 0
	}
	switch x := v.(type) {
	case float64:
		return int(x)
	case int:
		return x
	case uint32:
		return int(x)
	case uint64:
		return int(x)
	case int64:
		return int(x)
	}
	return 0
}

// countParams counts weights when the server gives no parameter size.
func countParams(m estimate.Model) float64 {
	var n float64
	for _, t := range m.Tensors {
		e := 1.0
		for _, d := range t.Shape {
			e *= float64(d)
		}
		n += e
	}
	return n / 1e9
}

func (c *catalogue) candidates() []score.Candidate {
	var out []score.Candidate
	for _, md := range c.models {
		if !md.hasDetails {
			continue
		}
		out = append(out, score.Candidate{
			Name: md.inst.Name, Family: md.det.Family, Families: md.det.Families,
			ParamsB: md.paramsB, Capabilities: md.det.Capabilities,
		})
	}
	return out
}

// shown is one model of a listing with its details (or why there are
// none); listed: the details come from the list alone.
type shown struct {
	inst   serving.Installed
	det    serving.Details
	listed bool
	err    error
}

// merge takes a listing into the catalogue: new and changed models get
// their details, models gone from the server are forgotten (unless active:
// loading, loaded or unloading). It reports whether anything users see
// changed and whether the details cache did.
func (c *catalogue) merge(results []shown, set Settings, active func(name string) bool) (changed, cacheChanged bool) {
	if !c.listed {
		// Discovered, even with none installed: a window shows the offer
		// of models on the event.
		c.ch.header()
		changed = true
	}
	c.listed = true
	seen := map[string]bool{}
	digests := map[string]bool{}
	for _, r := range results {
		seen[r.inst.Name] = true
		digests[r.inst.Digest] = true
		md, ok := c.models[r.inst.Name]
		if !ok {
			md = &model{}
			c.models[r.inst.Name] = md
			c.ch.membership()
			changed = true
		}
		unchanged := md.hasDetails && md.inst.Digest == r.inst.Digest && (md.detailed || r.listed)
		if md.inst.Digest != r.inst.Digest || md.inst.SizeBytes != r.inst.SizeBytes {
			c.ch.model(r.inst.Name) // what a view shows of the listing
		}
		md.inst = r.inst
		if unchanged {
			continue
		}
		changed = true
		cacheChanged = c.show(md, r.det, r.err, !r.listed, set) || cacheChanged
	}
	for n := range c.models {
		if !seen[n] && !active(n) {
			delete(c.models, n)
			c.ch.membership()
			c.gen++
			changed = true
		}
	}
	for d := range c.details {
		if !digests[d] {
			delete(c.details, d) // deleted from Ollama: forget it
			cacheChanged = true
		}
	}
	return changed, cacheChanged
}

// show takes a model's details: /api/show's answer (detailed) or what the
// list said. It reports whether the details cache changed.
func (c *catalogue) show(md *model, det serving.Details, err error, detailed bool, set Settings) bool {
	md.showing = false
	if err != nil {
		md.showErr, md.hasDetails, md.detailed = err, false, false
		c.evaluate(md, set)
		return false
	}
	md.det, md.hasDetails, md.detailed, md.showErr = det, true, detailed, nil
	c.evaluate(md, set)
	if _, ok := c.details[md.inst.Digest]; !ok && detailed && md.inst.Digest != "" {
		c.details[md.inst.Digest] = det
		return true
	}
	return false
}

// undetailed are the models whose /api/show is still to be read.
func (c *catalogue) undetailed() []string {
	var out []string
	for n, md := range c.models {
		if md.hasDetails && !md.detailed && !md.showing {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func (c *catalogue) forget(name string) {
	delete(c.models, name)
	c.ch.membership()
	c.gen++
}

// unknown explains a name the catalogue does not hold.
func (c *catalogue) unknown(name string) error {
	var known []string
	for n := range c.models {
		known = append(known, n)
	}
	slices.Sort(known)
	hint := "none installed"
	if len(known) > 0 {
		if len(known) > 8 {
			known = append(known[:8], "...")
		}
		hint = "installed: " + strings.Join(known, ", ")
	}
	return fmt.Errorf("%q (%s): %w", name, hint, ErrModelUnknown)
}
