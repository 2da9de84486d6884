package sim

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/score"
)

// zipfPicker draws index k (0-based) with probability ∝ 1/(k+1)^s. Written
// out because math/rand/v2's Zipf needs s > 1 and web-like popularity sits
// near s = 1.
type zipfPicker struct{ cdf []float64 }

func newZipf(n int, s float64) zipfPicker {
	cdf := make([]float64, n)
	var sum float64
	for k := range n {
		sum += 1 / math.Pow(float64(k+1), s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	return zipfPicker{cdf}
}

func (z zipfPicker) pick(r *rand.Rand) int {
	i, _ := slices.BinarySearch(z.cdf, r.Float64())
	return min(i, len(z.cdf)-1)
}

func expGap(r *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration(r.ExpFloat64() * float64(mean))
}

// Zipf returns n requests whose model is drawn from models by Zipf
// popularity with exponent s (models[0] the most popular), arriving as a
// Poisson stream with mean gap.
func Zipf(name string, models []string, n int, s float64, gap time.Duration, seed uint64) Trace {
	r := rand.New(rand.NewPCG(seed, 1))
	z := newZipf(len(models), s)
	tr := Trace{Name: name}
	var at time.Duration
	for range n {
		at += expGap(r, gap)
		tr.Requests = append(tr.Requests, Request{At: at, Model: models[z.pick(r)], Agent: "zipf"})
	}
	return tr
}

// Weighted is one entry of an agent's mix: a model asked for a task.
type Weighted struct {
	Model  string
	Weight float64
	Task   string // "task" or "task/role"; "" when not known
}

// Agent works in bursts: Burst requests on average, Think apart, then
// Idle on average before the next burst; each request's model is drawn
// from Mix.
type Agent struct {
	Name  string
	Mix   []Weighted
	Burst float64
	Think time.Duration
	Idle  time.Duration
}

// Bursty interleaves the agents' streams by time and keeps the first n.
func Bursty(name string, agents []Agent, n int, seed uint64) Trace {
	r := rand.New(rand.NewPCG(seed, 2))
	var all []Request
	for _, a := range agents {
		var total float64
		for _, w := range a.Mix {
			total += w.Weight
		}
		at := expGap(r, a.Idle)
		for count := 0; count < n; {
			burst := 1 + int(r.ExpFloat64()*(a.Burst-1))
			for range burst {
				x := r.Float64() * total
				w := a.Mix[len(a.Mix)-1]
				for _, c := range a.Mix {
					if x -= c.Weight; x < 0 {
						w = c
						break
					}
				}
				all = append(all, Request{At: at, Model: w.Model, Agent: a.Name, Task: w.Task})
				count++
				at += expGap(r, a.Think)
			}
			at += expGap(r, a.Idle)
		}
	}
	slices.SortStableFunc(all, func(a, b Request) int { return cmp.Compare(a.At, b.At) })
	return Trace{Name: name, Requests: all[:min(n, len(all))]}
}

// PhaseChange runs len(phases) phases of perPhase requests; within a phase
// the models of that phase are drawn by Zipf(s), and noise of the requests
// go to any model of universe, uniformly.
func PhaseChange(name string, phases [][]string, universe []string, perPhase int, s, noise float64, gap time.Duration, seed uint64) Trace {
	r := rand.New(rand.NewPCG(seed, 3))
	tr := Trace{Name: name}
	var at time.Duration
	for _, ph := range phases {
		z := newZipf(len(ph), s)
		for range perPhase {
			at += expGap(r, gap)
			m := ph[z.pick(r)]
			if r.Float64() < noise {
				m = universe[r.IntN(len(universe))]
			}
			tr.Requests = append(tr.Requests, Request{At: at, Model: m, Agent: "phase"})
		}
	}
	return tr
}

// Resolve maps a task and role to a model the way the manager's
// BestModelForTask does: the best-ranked candidate (score.Tables.Rank)
// whose size fits the budget.
func Resolve(t score.Tables, cands []score.Candidate, cat Catalogue, budget uint64, task, role string) (string, error) {
	ranked, err := t.Rank(cands, task, role)
	if err != nil {
		return "", fmt.Errorf("resolve %s/%s: %w", task, role, err)
	}
	for _, c := range ranked {
		if m, ok := cat[c.Name]; ok && m.Bytes <= budget {
			return c.Name, nil
		}
	}
	return "", fmt.Errorf("resolve %s/%s: no model fits %d bytes", task, role, budget)
}

func randFor(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }
