package sim

import (
	"slices"

	"github.com/vramkeeper/vramkeeper/manager/predict"
)

// Recent is the baseline predictor: the most recently requested models,
// most recent first.
type Recent struct{ mru []string }

func (r *Recent) Observe(o predict.Obs) {
	if o.Kind != predict.Request {
		return
	}
	r.mru = slices.DeleteFunc(r.mru, func(m string) bool { return m == o.Model })
	r.mru = slices.Insert(r.mru, 0, o.Model)
}

// Next returns the k most recent models not excluded; P is not estimated.
func (r *Recent) Next(k int, q predict.Query) []predict.Guess {
	var out []predict.Guess
	for _, m := range r.mru {
		if len(out) == k {
			break
		}
		if !slices.Contains(q.Exclude, m) {
			out = append(out, predict.Guess{Model: m})
		}
	}
	return out
}

// Hits feeds tr's requests to p one by one and, before each (the first
// excepted), asks for k guesses: hits[j] counts the requests whose model
// was among the first j+1 guesses, out of n.
func Hits(tr Trace, p Predictor, k int) (hits []int, n int) {
	hits = make([]int, k)
	for i, r := range tr.Requests {
		if i > 0 {
			n++
			for j, g := range p.Next(k, predict.Query{}) {
				if g.Model == r.Model {
					for ; j < k; j++ {
						hits[j]++
					}
					break
				}
			}
		}
		p.Observe(predict.Obs{Kind: predict.Request, Model: r.Model, Client: r.Agent, Task: r.Task})
	}
	return hits, n
}
