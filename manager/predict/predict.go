// Package predict guesses which models will be asked for next, from the
// requests, loads and evictions seen so far. It is pure: observations go
// in, ranked guesses with probabilities come out; no clock, no goroutines.
//
// Several experts each give a distribution over the known models:
// first-order transitions (which model follows which) globally, per client
// (each client's own chain, weighed by who tends to speak after whom) and
// per task; how far back in the recency order the next model usually sits;
// decayed frequency over a short and a long memory; and evicted models
// that tend to come back soon after. A Bayesian mixture with fixed share
// (Herbster and Warmuth 1998) weighs the experts by how well each
// predicted the requests so far, so the ones that fit a workload take over
// and a change of workload moves the weight again.
package predict

import (
	"cmp"
	"math"
	"slices"
)

// Kind is what an observation reports.
type Kind int

const (
	Request Kind = iota // a client asked for Model
	Load                // Model was loaded (by a request or by hand)
	Evict               // Model was unloaded to make room for another
)

// Obs is one observation.
type Obs struct {
	Kind  Kind
	Model string
	// Task and Client say who asked and for what, when the caller knows
	// ("" otherwise): the proxy knows the task of an auto:TASK request and
	// may know the client from its address or User-Agent.
	Task, Client string
}

// Query narrows a prediction.
type Query struct {
	// Client and Task, when known, say who asks next or for what: the
	// answer is then that task's models (Task wins when both are set), or
	// that client's own chain from its last request, instead of the
	// mixture of all experts.
	Client, Task string
	// Exclude drops models from the answer, e.g. the loaded ones, which a
	// prefetcher has no need to warm.
	Exclude []string
}

// Guess is one predicted model and the probability that the next request
// asks for it.
type Guess struct {
	Model string
	P     float64
}

const (
	// share is the fixed-share rate: the weight each expert is guaranteed
	// back per request, so a workload change can revive any of them.
	share = 0.02
	// floor is the probability every known model keeps in each expert, so
	// one surprise cannot zero an expert's weight.
	floor = 0.01
	// prior is the pseudo-count that backs a sparse row off to its parent
	// distribution (transitions to frequency, a client's to everyone's).
	prior = 1.0
	// memory is the half-life, in requests, of transition and task
	// counts; shortMemory and longMemory those of the frequency experts.
	memory      = 500
	shortMemory = 30
	longMemory  = 2000
	// comebackWindow is how many requests after its eviction a model's
	// return counts as coming back.
	comebackWindow = 20
)

// Predictor learns from observations and predicts the next requests. The
// zero value is not usable; call New. Not safe for concurrent use: the
// manager's owner loop feeds and asks it.
type Predictor struct {
	ids   map[string]int
	names []string
	step  int // requests observed

	global     *chain
	clients    map[string]*chain
	lastClient string
	clientNext map[string]*row // client -> who spoke next
	tasks      map[string]*row // task -> models asked for it
	lastTask   string
	taskNext   map[string]*row // task -> task asked next
	shortFreq  *row
	longFreq   *row
	mru        []int       // distinct models, most recent first
	rankHits   *row        // how often the next request sat at each recency rank
	evicted    map[int]int // model -> step of its eviction, while not back
	evictions  []float64   // per model
	comebacks  []float64   // per model: returns within comebackWindow

	weights []float64 // per expert

	tmp scratch
}

// scratch lends the distributions one call works with (experts and what
// they are made of): they live until the next call, so a request costs no
// allocation once the buffers have grown. A Predictor is used by one
// goroutine at a time.
type scratch struct {
	f     []float64
	dists [7][]float64
	keys  []string
	kv    map[string]float64
}

func (t *scratch) reset() { t.f = t.f[:0] }

// floats is n zeros, valid until the next reset.
func (t *scratch) floats(n int) []float64 {
	if len(t.f)+n > cap(t.f) {
		t.f = make([]float64, 0, max(2*cap(t.f), len(t.f)+n, 64))
	}
	out := t.f[len(t.f) : len(t.f)+n : len(t.f)+n]
	clear(out)
	t.f = t.f[:len(t.f)+n]
	return out
}

// Indexes of the experts that a Query can single out.
const (
	expertClient = 1
	expertTask   = 2
)

// expertNames name the experts in the order of Predictor.weights.
func expertNames() []string {
	return []string{"transition", "client", "task", "recency", "frequency-short", "frequency-long", "comeback"}
}

// New returns an empty predictor.
func New() *Predictor {
	p := &Predictor{
		ids: map[string]int{}, global: newChain(), clients: map[string]*chain{},
		clientNext: map[string]*row{}, tasks: map[string]*row{}, taskNext: map[string]*row{},
		shortFreq: newRow(shortMemory), longFreq: newRow(longMemory), rankHits: newRow(memory),
		evicted: map[int]int{},
	}
	p.weights = make([]float64, len(expertNames()))
	for i := range p.weights {
		p.weights[i] = 1 / float64(len(p.weights))
	}
	return p
}

// Experts returns each expert's current weight in the mixture, by name:
// which signal the workload so far rewards.
func (p *Predictor) Experts() map[string]float64 {
	out := map[string]float64{}
	for i, n := range expertNames() {
		out[n] = p.weights[i]
	}
	return out
}

func (p *Predictor) id(name string) int {
	if i, ok := p.ids[name]; ok {
		return i
	}
	i := len(p.names)
	p.ids[name] = i
	p.names = append(p.names, name)
	p.evictions = append(p.evictions, 0)
	p.comebacks = append(p.comebacks, 0)
	return i
}

// Observe records one observation.
func (p *Predictor) Observe(o Obs) {
	if o.Model == "" {
		return
	}
	m := p.id(o.Model)
	switch o.Kind {
	case Evict:
		p.evicted[m] = p.step
		p.evictions[m]++
		return
	case Load:
		p.back(m)
		return
	}
	// Score the experts on this request before learning from it.
	if p.step > 0 {
		dists := p.experts(Query{})
		var total float64
		for e, d := range dists {
			p.weights[e] *= d[m]
			total += p.weights[e]
		}
		for e := range p.weights {
			p.weights[e] = (1-share)*p.weights[e]/total + share/float64(len(p.weights))
		}
	}
	p.learn(m, o)
}

// back records that m is wanted again: a comeback if it was evicted
// lately, whether its request or its load is observed first.
func (p *Predictor) back(m int) {
	if at, ok := p.evicted[m]; ok {
		if p.step-at <= comebackWindow {
			p.comebacks[m]++
		}
		delete(p.evicted, m)
	}
}

func (p *Predictor) learn(m int, o Obs) {
	s := p.step
	p.back(m)
	for m2, at := range p.evicted {
		if s-at > comebackWindow {
			delete(p.evicted, m2) // it did not come back in time
		}
	}
	if r := slices.Index(p.mru, m); r >= 0 {
		p.rankHits.add(r, s)
		p.mru = slices.Delete(p.mru, r, r+1)
	}
	p.mru = slices.Insert(p.mru, 0, m)

	p.global.add(m, s)
	c := p.clients[o.Client]
	if c == nil {
		c = newChain()
		p.clients[o.Client] = c
	}
	c.add(m, s)
	if p.step > 0 {
		rowOf(p.clientNext, p.lastClient).addKey(o.Client, s)
		rowOf(p.taskNext, p.lastTask).addKey(o.Task, s)
	}
	rowOf(p.tasks, o.Task).add(m, s)
	p.lastClient, p.lastTask = o.Client, o.Task
	p.shortFreq.add(m, s)
	p.longFreq.add(m, s)
	p.step++
}

// Next returns up to k models most likely to be asked for next, best
// first, leaving out q.Exclude. P is the mixture's probability that the
// next request asks for that model.
func (p *Predictor) Next(k int, q Query) []Guess {
	if p.step == 0 || k <= 0 {
		return nil
	}
	dists := p.experts(q)
	var mix []float64
	switch {
	case q.Task != "":
		mix = dists[expertTask]
	case q.Client != "":
		mix = dists[expertClient]
	default:
		mix = p.tmp.floats(len(p.names))
		for e, d := range dists {
			addScaled(mix, d, p.weights[e])
		}
	}
	var out []Guess
	for m, v := range mix {
		if !slices.Contains(q.Exclude, p.names[m]) {
			out = append(out, Guess{Model: p.names[m], P: v})
		}
	}
	slices.SortFunc(out, func(a, b Guess) int {
		return cmp.Or(cmp.Compare(b.P, a.P), cmp.Compare(a.Model, b.Model))
	})
	return out[:min(k, len(out))]
}

// experts returns each expert's distribution over the known models,
// floored so every model keeps some probability.
func (p *Predictor) experts(q Query) [][]float64 {
	n := len(p.names)
	s := p.step
	t := &p.tmp
	t.reset()
	uniform := t.floats(n)
	for i := range uniform {
		uniform[i] = 1 / float64(n)
	}
	long := p.longFreq.dist(t.floats(n), s, uniform)
	out := append(t.dists[:0],
		p.global.dist(t.floats(n), s, long),
		p.clientExpert(q, n, s, long),
		p.taskExpert(q, n, s, long),
		p.recencyExpert(n, s),
		p.shortFreq.dist(t.floats(n), s, uniform),
		long,
		p.comebackExpert(n),
	)
	for _, d := range out {
		for i := range d {
			d[i] = (1-floor)*d[i] + floor/float64(n)
		}
	}
	return out
}

// clientExpert: the next client is q.Client if known, else drawn from who
// followed the last client before; each client continues its own chain.
func (p *Predictor) clientExpert(q Query, n, s int, base []float64) []float64 {
	t := &p.tmp
	return t.mixKeys(t.nextKey(q.Client, p.clientNext, p.lastClient), n, base, func(c string) []float64 {
		if ch := p.clients[c]; ch != nil {
			return ch.dist(t.floats(n), s, ch.freq.dist(t.floats(n), s, base))
		}
		return nil
	})
}

// taskExpert: the next task follows the last one (or is q.Task), and each
// task has its models.
func (p *Predictor) taskExpert(q Query, n, s int, base []float64) []float64 {
	t := &p.tmp
	return t.mixKeys(t.nextKey(q.Task, p.taskNext, p.lastTask), n, base, func(task string) []float64 {
		if r := p.tasks[task]; r != nil {
			return r.dist(t.floats(n), s, base)
		}
		return nil
	})
}

// nextKey is the distribution of the next client (or task): known, else
// the ones that followed last before (the row's keys: decay scales them
// alike), else last again. It is valid until the next call.
func (t *scratch) nextKey(known string, follows map[string]*row, last string) map[string]float64 {
	if t.kv == nil {
		t.kv = map[string]float64{}
	}
	clear(t.kv)
	switch r := follows[last]; {
	case known != "":
		t.kv[known] = 1
	case r != nil && len(r.keys) > 0:
		for k, c := range r.keys {
			t.kv[k] = c / r.sum
		}
	default:
		t.kv[last] = 1
	}
	return t.kv
}

// mixKeys sums each key's distribution over the models, weighted by the
// key's probability; a key without data (dist returns nil) gives base.
// Keys go in sorted order so that sums, and so rankings, are reproducible.
func (t *scratch) mixKeys(keys map[string]float64, n int, base []float64, dist func(string) []float64) []float64 {
	out := t.floats(n)
	t.keys = t.keys[:0]
	for k := range keys {
		t.keys = append(t.keys, k)
	}
	slices.Sort(t.keys)
	for _, k := range t.keys {
		d := dist(k)
		if d == nil {
			d = base
		}
		addScaled(out, d, keys[k])
	}
	return out
}

// recencyExpert: the model at recency rank r gets the learnt share of
// requests that went to rank r.
func (p *Predictor) recencyExpert(n, s int) []float64 {
	out := p.tmp.floats(n)
	ranks := p.tmp.floats(len(p.mru))
	var total float64
	for r := range ranks {
		ranks[r] = p.rankHits.get(r, s) + prior/float64(r+1) // a fresh predictor favours the recent
		total += ranks[r]
	}
	for r, m := range p.mru {
		out[m] = ranks[r] / total
	}
	return out
}

// comebackExpert: among models evicted lately and not back yet, the ones
// that often returned soon after an eviction, most recent eviction first.
func (p *Predictor) comebackExpert(n int) []float64 {
	out := p.tmp.floats(n)
	var total float64
	for m, at := range p.evicted {
		rate := (p.comebacks[m] + 1) / (p.evictions[m] + 2)
		out[m] = rate / float64(1+p.step-at)
		total += out[m]
	}
	if total == 0 {
		for i := range out {
			out[i] = 1 / float64(n)
		}
		return out
	}
	for i := range out {
		out[i] /= total
	}
	return out
}

func addScaled(dst, src []float64, f float64) {
	for i, v := range src {
		dst[i] += f * v
	}
}

// chain is a first-order Markov chain over models with decayed counts.
type chain struct {
	last  int
	freq  *row
	trans map[int]*row
}

func newChain() *chain { return &chain{last: -1, freq: newRow(memory), trans: map[int]*row{}} }

func (c *chain) add(m, step int) {
	if c.last >= 0 {
		r := c.trans[c.last]
		if r == nil {
			r = newRow(memory)
			c.trans[c.last] = r
		}
		r.add(m, step)
	}
	c.freq.add(m, step)
	c.last = m
}

// dist is P(next | last), backed off to base, in out.
func (c *chain) dist(out []float64, step int, base []float64) []float64 {
	if r := c.trans[c.last]; r != nil {
		return r.dist(out, step, base)
	}
	copy(out, base)
	return out
}

// row holds counts that halve every half-life steps, decayed lazily.
// counts are by model id (or recency rank), which are small and dense: a
// slice, as every request decays a handful of rows.
type row struct {
	halfLife float64
	at       int
	counts   []float64
	keys     map[string]float64 // for rows over clients or tasks
	sum      float64
	// memo is the last factor worked out: a row is asked at the same
	// distance from its last update again and again (every request decays
	// and reads it), and Exp2 is most of a request's cost.
	memo struct {
		dt int
		f  float64
	}
}

func newRow(halfLife float64) *row {
	r := &row{halfLife: halfLife, keys: map[string]float64{}}
	r.memo.f = 1 // Exp2(0)
	return r
}

func rowOf(m map[string]*row, k string) *row {
	r := m[k]
	if r == nil {
		r = newRow(memory)
		m[k] = r
	}
	return r
}

func (r *row) factor(step int) float64 {
	if dt := step - r.at; dt != r.memo.dt {
		r.memo.dt, r.memo.f = dt, math.Exp2(-float64(dt)/r.halfLife)
	}
	return r.memo.f
}

func (r *row) decay(step int) {
	f := r.factor(step)
	for k := range r.counts {
		r.counts[k] *= f
	}
	if len(r.keys) > 0 {
		for k := range r.keys {
			r.keys[k] *= f
		}
	}
	r.sum *= f
	r.at = step
}

func (r *row) add(m, step int) {
	r.decay(step)
	if m >= len(r.counts) {
		r.counts = append(r.counts, make([]float64, m+1-len(r.counts))...)
	}
	r.counts[m]++
	r.sum++
}

func (r *row) addKey(k string, step int) {
	r.decay(step)
	r.keys[k]++
	r.sum++
}

func (r *row) get(m, step int) float64 {
	if m >= len(r.counts) {
		return 0
	}
	return r.counts[m] * r.factor(step)
}

// dist is (count + prior·base) / (sum + prior) per model, in out.
func (r *row) dist(out []float64, step int, base []float64) []float64 {
	f := r.factor(step)
	den := r.sum*f + prior
	for i := range out {
		out[i] = prior * base[i] / den
	}
	for m, c := range r.counts {
		if c != 0 { // never counted: nothing to add
			out[m] += c * f / den
		}
	}
	return out
}
