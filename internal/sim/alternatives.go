package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/vramkeeper/vramkeeper/manager/evict"
)

// OllamaRule is the order in which Ollama's scheduler unloads runners
// (server/sched.go at v0.17.4, findRunnerToUnload with ByDurationAndName):
// the shortest configured keep_alive first, then the model's blob path. Every
// model here has the default keep_alive, so the blob path decides: a
// digest, which says nothing about use; a hash of the name stands in for it.
type OllamaRule struct{}

func (OllamaRule) Name() string                                 { return "ollama" }
func (OllamaRule) Touch(*evict.Entry, float64)                  {}
func (OllamaRule) Before(a, b evict.Entry) bool                 { return digest(a.Name) < digest(b.Name) }
func (OllamaRule) Evicted(_ evict.Entry, clock float64) float64 { return clock }

func digest(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:])
}

// OllamaPlan is Ollama's scheduler loop (processPending): while the runner
// count is at OLLAMA_MAX_LOADED_MODELS, or the new model does not fit the
// GPU's room beside the loaded ones, unload the first runner in its order
// and look again. Unlike evict.Plan it never takes a victim back, and the
// first model always loads (partly offloaded if need be).
func OllamaPlan(loaded []evict.Entry, target Model, lim evict.Limits, p evict.Policy) ([]evict.Entry, error) {
	order := slices.Clone(loaded)
	slices.SortStableFunc(order, func(a, b evict.Entry) int {
		switch {
		case p.Before(a, b):
			return -1
		case p.Before(b, a):
			return 1
		}
		return 0
	})
	var used uint64
	for _, e := range order {
		used += e.Bytes
	}
	var victims []evict.Entry
	for len(order) > 0 && ((lim.MaxLoaded > 0 && len(order) >= lim.MaxLoaded) || used+target.Bytes > lim.Budget) {
		victims = append(victims, order[0])
		used -= order[0].Bytes
		order = order[1:]
	}
	return victims, nil
}

// SwapGroups is llama-swap's group router (internal/router/group.go,
// groupSwapper): every model belongs to one group; loading a model stops
// the other running members of its group when the group swaps, and every
// other group's members when it is exclusive. llama-swap knows nothing of
// memory, so nothing else is unloaded, and models stay until swapped out
// (ttl 0, its default).
type SwapGroups struct {
	// Group names a model's group.
	Group func(model string) string
	// Exclusive: loading any model stops the other groups' models
	// (llama-swap's default for its one default group).
	Exclusive bool
}

// Plan is a Planner for Config.Plan; every group swaps (one model at a
// time per group).
func (g SwapGroups) Plan(loaded []evict.Entry, target Model, _ evict.Limits, _ evict.Policy) ([]evict.Entry, error) {
	tg := g.Group(target.Name)
	var victims []evict.Entry
	for _, e := range loaded {
		if g.Exclusive || g.Group(e.Name) == tg {
			victims = append(victims, e)
		}
	}
	return victims, nil
}
