package main

import (
	"fmt"
	"strings"

	"github.com/vramkeeper/vramkeeper/internal/sim"
)

const gibF = float64(1 << 30)

// policySections replays the standard traces (internal/sim) through every
// policy: one table per trace and a bar chart of loads over the bound.
func policySections(requests int) ([]section, error) {
	setup, err := sim.Standard(requests, 1)
	if err != nil {
		return nil, fmt.Errorf("sim setup: %w", err)
	}
	var agents []string
	for _, a := range setup.Agents {
		var ts []string
		for _, t := range a.Tasks {
			tr := t.Task
			if t.Role != "" {
				tr += "/" + t.Role
			}
			ts = append(ts, fmt.Sprintf("%s→%s ×%g", tr, t.Model, t.Weight))
		}
		agents = append(agents, a.Name+": "+strings.Join(ts, ", "))
	}
	intro := fmt.Sprintf("Catalogue: the seed's 27 models (0.5B–70B), sized by the manager's own estimator on llama-shaped "+
		"Q4_0 metadata at 4096 tokens (fakert.ModelSize: 0.69–38 GiB; %d fit the 7 GiB budget alone and are the only ones "+
		"requested, as BestModelForTask never picks a model over the budget). Card 8 GiB, budget 7 GiB, at most 2 loaded "+
		"(the manager's defaults). %d requests per trace, seed 1. Online policies run through the manager's own "+
		"`evict.Plan` and `evict.Policy` with the manager's bookkeeping (uses, last use, the policy's credit kept across unloads, GDSF clock). "+
		"**lrfu** ranks by a use count decayed with a 10-minute time constant (Lee et al. 2001); `evict.Plan` takes victims in policy "+
		"order and then keeps any victim the others made unnecessary (a small model evicted before a large one that alone made room). "+
		"**Ollama's rule** is its scheduler loop (sim.OllamaPlan): room = card − 457 MiB, at most 3 loaded, unload the "+
		"shortest keep_alive first (all default, so by blob path: a digest, a hash of the name here) one at a time until the "+
		"model fits, and unload after 5 min idle; it does not know our budget, so loads that leave more "+
		"than 7 GiB resident count as violations. **Belady** evicts the model needed furthest in the future. "+
		"**Optimum** is an exact shortest-path search over every feasible loaded set (≤ 2 models, ≤ 7 GiB): the true "+
		"bound for the manager's limits, computed on the whole trace.", len(setup.Eligible), requests)
	var out []section
	var bars []bar
	var verdict []string
	var defTotal, lruTotal, defBytes, lruBytes uint64
	var burstyDef, burstyZero int
	for _, tr := range setup.Traces {
		if strings.HasPrefix(tr.Name, "bursty") {
			c := setup.Configs(tr)[0]
			c.Limits.MaxLoaded = 0
			r, err := sim.Replay(setup.Catalogue, tr, c, sim.Env{Budget: setup.Limits.Budget})
			if err != nil {
				return nil, err
			}
			burstyZero = r.Loads
		}
		rs, err := setup.Run(tr)
		if err != nil {
			return nil, err
		}
		bound := rs[len(rs)-1]
		def, lru := rs[0], findLabel(rs, "lru")
		if strings.HasPrefix(tr.Name, "bursty") {
			burstyDef = def.Loads
		}
		defTotal, lruTotal = defTotal+uint64(def.Loads), lruTotal+uint64(lru.Loads)
		defBytes, lruBytes = defBytes+def.BytesLoaded, lruBytes+lru.BytesLoaded
		verdict = append(verdict, fmt.Sprintf("%s: %s %d loads vs LRU %d (%+.1f %%), %.2f× the optimum (goal ≤ 1.15: %s)",
			tr.Name, def.Label, def.Loads, lru.Loads, 100*(float64(def.Loads)/float64(lru.Loads)-1), def.Ratio(bound), yesNo(def.Ratio(bound) <= 1.15)))
		s := section{
			Title:  "Eviction policy: " + tr.Name + " trace",
			Header: []string{"policy", "loads", "× optimum loads", "GiB loaded", "budget violations", "hit rate", "peak GiB"},
		}
		if len(out) == 0 {
			s.Intro = intro
		}
		for _, r := range rs {
			s.Rows = append(s.Rows, []string{r.Label, fmt.Sprint(r.Loads), fmt.Sprintf("%.2f", r.Ratio(bound)),
				fmt.Sprintf("%.0f", float64(r.BytesLoaded)/gibF), fmt.Sprint(r.Violations),
				fmt.Sprintf("%.1f %%", 100*float64(r.Requests-r.Loads)/float64(r.Requests)),
				peak(r)})
			if !strings.HasPrefix(r.Label, "optimum") {
				bars = append(bars, bar{Label: tr.Name + ": " + shortLabel(r.Label), Value: r.Ratio(bound)})
			}
		}
		s.Notes = append(s.Notes, traceNote(tr, setup, agents))
		out = append(out, s)
	}
	summary := section{Title: "Eviction policy: verdict", Notes: append(verdict,
		fmt.Sprintf("All three traces: default %d loads vs LRU %d (%+.1f %%); bytes loaded %+.1f %%.", defTotal, lruTotal,
			100*(float64(defTotal)/float64(lruTotal)-1), 100*(float64(defBytes)/float64(lruBytes)-1)),
		"Bursty multi-agent: five agents interleave bursts over 5 small models with room for 2, so the next model depends on which agent speaks next, "+
			"which no per-model statistic predicts: LRU, GDSF and LRFU with any decay from 30 s to 6 h all land at 1.27–1.32× the optimum, and Belady (the future's order) is the optimum. "+
			fmt.Sprintf("The 1.15 bound is offline and holds for at most 2 loaded; lifting the count limit (max_loaded 0, the budget alone) "+
				"takes the default policy from %d to %d loads there, as the five models nearly fit the budget together (see the policy against the alternatives).",
				burstyDef, burstyZero),
		"Ollama's rule loads less only because it ignores the budget (up to 3 models, card − 457 MiB): every violation is a moment the card held more than the 7 GiB budget, which is what VRAM Keeper exists to prevent.")}
	out = append(out, summary)
	out[len(out)-1].Plots = map[string]string{"bench-policy.svg": barChart("Loads relative to the offline optimum (1.0 = optimal; goal ≤ 1.15)", "×", bars)}
	return out, nil
}

func peak(r sim.Result) string {
	if r.Peak == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", float64(r.Peak)/gibF)
}

func shortLabel(l string) string {
	if i := strings.Index(l, " ("); i > 0 && !strings.HasPrefix(l, "gdsf") {
		return l[:i]
	}
	return l
}

func traceNote(tr sim.Trace, s sim.Setup, agents []string) string {
	d := len(tr.Distinct())
	switch {
	case strings.HasPrefix(tr.Name, "zipf"):
		return fmt.Sprintf("Zipf (s = 1.0) over the %d models that fit, popularity order shuffled; Poisson arrivals, mean gap 20 s. %d distinct models requested.", len(s.Eligible), d)
	case strings.HasPrefix(tr.Name, "bursty"):
		return fmt.Sprintf("Five agents, each in bursts (mean 6–20 requests, 4 s apart) separated by idle spells (mean 3 min), interleaved by time. "+
			"Each task/role is mapped to a model with the manager's scoring (score.Defaults().Rank, best that fits the budget — what BestModelForTask picks): %s. %d distinct models.",
			strings.Join(agents, "; "), d)
	default:
		return fmt.Sprintf("Four phases of equal length, each a Zipf (s = 1.0) over its own working set of 3–4 models, plus 5 %% noise over all eligible models; mean gap 20 s. %d distinct models.", d)
	}
}

func findLabel(rs []sim.Result, label string) sim.Result {
	for _, r := range rs {
		if r.Label == label {
			return r
		}
	}
	return sim.Result{}
}
