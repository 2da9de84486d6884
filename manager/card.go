package manager

import (
	"cmp"
	"slices"

	"github.com/vramkeeper/vramkeeper/manager/card"
)

// CardView is one card in a snapshot: the driver's reading and what other
// programs hold on it.
type CardView struct {
	card.Card
	Others uint64 `json:"others_bytes"`
}

// cardViews says what other programs hold on each card: what the card
// uses beyond Ollama's processes where the driver tells them apart, else
// beyond our models' share of ours (what they held at the reading), split
// over those cards by their use.
func cardViews(v card.VRAM, ours uint64) []CardView {
	if len(v.Cards) == 0 {
		return nil
	}
	out := make([]CardView, len(v.Cards))
	var known, unknownUsed uint64
	for i, c := range v.Cards {
		out[i].Card = c
		switch {
		case c.Integrated:
		case c.OllamaKnown:
			known += c.Ollama
		default:
			unknownUsed += c.Used
		}
	}
	rest := ours - min(ours, known)
	for i, c := range v.Cards {
		var ollama uint64
		switch {
		case c.OllamaKnown:
			ollama = c.Ollama
		case !c.Integrated && unknownUsed > 0:
			ollama = uint64(float64(rest) * float64(c.Used) / float64(unknownUsed))
		}
		out[i].Others = c.Used - min(c.Used, ollama)
	}
	return out
}

// placement says where Ollama would put a model of need bytes on a machine
// with several cards: on the one with the most free memory when it fits
// there, else over the fewest cards, freest first, that hold it (Ollama
// v0.17 llm/server.go: buildLayout sorts the GPUs by free memory and
// assignLayers packs "onto the smallest set of GPUs"). It names the card in
// the first case and counts the cards in the second; with one card it says
// nothing (0).
func placement(need uint64, cards []card.Card, margin uint64) (name string, count int) {
	if need == 0 || len(cards) < 2 {
		return "", 0 // the common case, asked for every model at every publish: no allocation
	}
	var free []card.Card
	for _, c := range cards {
		if !c.Integrated {
			free = append(free, c)
		}
	}
	if len(free) < 2 {
		return "", 0
	}
	slices.SortStableFunc(free, func(a, b card.Card) int { return cmp.Compare(b.Free, a.Free) })
	var room uint64
	for i, c := range free {
		room += c.Free - min(c.Free, margin)
		if need <= room {
			if i == 0 {
				return c.Name, 1
			}
			return "", i + 1
		}
	}
	return "", len(free)
}

// cardTotals are the sizes of the cards Ollama uses, largest first, for
// how many a model spans; nil with fewer than two (the owner asks after
// every event, so one card costs nothing).
func cardTotals(v card.VRAM) []uint64 {
	n := 0
	for _, c := range v.Cards {
		if !c.Integrated {
			n++
		}
	}
	if n < 2 {
		return nil
	}
	out := make([]uint64, 0, n)
	for _, c := range v.Cards {
		if !c.Integrated {
			out = append(out, c.Total)
		}
	}
	slices.SortFunc(out, func(a, b uint64) int { return cmp.Compare(b, a) })
	return out
}

// spans is how many of the cards (sizes largest first) a model needs,
// where needOn(k) is what it needs spread over k of them (each pays its
// own driver context): the fewest that hold it, all of them when none do.
func spans(totals []uint64, needOn func(k int) uint64) int {
	var room uint64
	for i, t := range totals {
		room += t
		if needOn(i+1) <= room {
			return i + 1
		}
	}
	return max(len(totals), 1)
}
