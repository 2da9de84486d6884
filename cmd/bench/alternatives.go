package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/sim"
	"github.com/vramkeeper/vramkeeper/manager/predict"
)

// predictSection measures manager/predict on the standard traces: how
// often the next request's model, and the next load's, was among its top
// guesses, against the most-recently-used baseline.
func predictSection(requests int) (section, error) {
	setup, err := sim.Standard(requests, 1)
	if err != nil {
		return section{}, fmt.Errorf("sim setup: %w", err)
	}
	s := section{
		Title: "Next-model prediction",
		Intro: "manager/predict on the standard traces (the policy tables' traces; requests carry their agent as the client and, " +
			"on the bursty trace, the task/role). **Next request**: before each request, the top guesses from everything seen so far; " +
			"a hit when the request's model is among them. **Next load**: replaying the default policy (lrfu, max_loaded 2), the " +
			"guesses among the models not loaded, made after each request (what the prefetcher warms while idle); a hit when the " +
			"next load is among them. **Baseline**: the most recently used models (for the next load: the most recently used ones " +
			"not loaded).",
		Header: []string{"trace", "next request: top-1", "top-2", "baseline top-1", "baseline top-2",
			"next load: top-1", "top-2", "baseline top-1", "baseline top-2", "heaviest experts at the end"},
	}
	pct := func(a, b int) string { return fmt.Sprintf("%.1f %%", 100*float64(a)/float64(max(b, 1))) }
	def := setup.Alternatives()[0].Config
	nextLoad := func(tr sim.Trace, mk func() sim.Predictor, k int) (int, int, error) {
		c := def
		c.Prefetch, c.PrefetchK = mk, k
		r, err := sim.Replay(setup.Catalogue, tr, c, sim.Env{Budget: setup.Limits.Budget, Storage: &sim.Storage{}})
		return r.Foreseen, r.Loads, err
	}
	ours := func() sim.Predictor { return predict.New() }
	recent := func() sim.Predictor { return &sim.Recent{} }
	for _, tr := range setup.Traces {
		p := predict.New()
		h, n := sim.Hits(tr, p, 2)
		hb, _ := sim.Hits(tr, &sim.Recent{}, 2)
		row := []string{tr.Name, pct(h[0], n), pct(h[1], n), pct(hb[0], n), pct(hb[1], n)}
		for _, mk := range []func() sim.Predictor{ours, recent} {
			for _, k := range []int{1, 2} {
				f, l, err := nextLoad(tr, mk, k)
				if err != nil {
					return s, err
				}
				row = append(row, pct(f, l))
			}
		}
		row = append(row, heaviest(p.Experts()))
		s.Rows = append(s.Rows, row)
	}
	s.Notes = append(s.Notes,
		"The predictor mixes experts (first-order transitions globally, per client weighted by who tends to speak next, per task; "+
			"the learnt recency-rank distribution; decayed frequency over ~30 and ~2000 requests; evicted models that came back within "+
			"20 requests), weighted online by how well each predicted the requests so far (Bayesian mixture with fixed share 2 %).",
		"Zipf requests are independent draws, so the best any predictor can do is the popularity order; the bursty trace's next "+
			"request depends on which agent speaks next, which the per-client chains and who-follows-whom capture in part.")
	return s, nil
}

func heaviest(w map[string]float64) string {
	type kv struct {
		k string
		v float64
	}
	var all []kv
	for k, v := range w {
		all = append(all, kv{k, v})
	}
	slices.SortFunc(all, func(a, b kv) int {
		if a.v != b.v {
			if a.v > b.v {
				return -1
			}
			return 1
		}
		return strings.Compare(a.k, b.k)
	})
	var out []string
	for _, e := range all[:min(2, len(all))] {
		out = append(out, fmt.Sprintf("%s %.2f", e.k, e.v))
	}
	return strings.Join(out, ", ")
}

// cacheBytes is the page cache the comparison gives model files: a 16 GB
// machine whose programs leave about half to cached files.
const cacheBytes = 8 << 30

// loadFit returns the swap fit of this run, or the one the last swap bench
// saved beside the docs.
func loadFit(fit *swapFit, docDir string) (swapFit, error) {
	if fit != nil {
		return *fit, nil
	}
	p := filepath.Join(docDir, swapFitFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return swapFit{}, fmt.Errorf("no swap measurements (run `go run ./cmd/bench -only swap` first): %w", err)
	}
	var f swapFit
	if err := json.Unmarshal(b, &f); err != nil {
		return swapFit{}, fmt.Errorf("%s: %w", p, err)
	}
	return f, nil
}

// alternativesSections compares ours with what users run instead, on the
// standard traces, with the measured swap-time model.
func alternativesSections(requests int, fit swapFit) ([]section, error) {
	setup, err := sim.Standard(requests, 1)
	if err != nil {
		return nil, fmt.Errorf("sim setup: %w", err)
	}
	storage := func(cache uint64) sim.Storage {
		return sim.Storage{CacheBytes: cache, Cost: fit.Cost, PrefetchRate: fit.PrefetchRate, IdleAfter: 2 * time.Second}
	}
	alts := setup.Alternatives()
	var out []section
	var verdict, names []string
	var bars []bar
	var all [][]sim.Result
	for i, tr := range setup.Traces {
		rs, err := setup.Compare(tr, storage(cacheBytes))
		if err != nil {
			return nil, err
		}
		all, names = append(all, rs), append(names, tr.Name)
		s := section{
			Title:  "Policy against the alternatives: " + tr.Name + " trace",
			Header: []string{"configuration", "loads", "GB read from disk", "GB from the page cache", "GB prefetched", "total swap time", "budget violations", "peak GiB"},
		}
		if i == 0 {
			s.Intro = fmt.Sprintf("The standard traces (%d requests each) on the seed catalogue, 8 GiB card, 7 GiB budget, replayed "+
				"through each configuration's own rules (internal/sim): **ours** is the manager's evict.Plan with its default "+
				"policy (lrfu) at max_loaded 2 (today's default) and 0 (only the budget limits); **+ prefetch** adds manager/predict "+
				"and a prefetcher that, once the manager has been idle 2 s, reads the best guess's file into the page cache at the "+
				"measured prefetch rate until the next request. **Ollama** is its scheduler loop at v0.17.4 (server/sched.go: at "+
				"OLLAMA_MAX_LOADED_MODELS runners, or when the model does not fit the card less 457 MiB beside the others, unload "+
				"the runner first in keep_alive-then-blob-path order, i.e. an arbitrary one, and look again; keep_alive 5 min unloads "+
				"idle models). **llama-swap** is its group router (internal/router/group.go): its default is one exclusive group, "+
				"one model at a time; the second row puts embedding models in a group of their own (each group swaps, groups "+
				"coexist). Ollama and llama-swap do not know the budget: a violation is a load that leaves more than 7 GiB loaded. "+
				"Every load reads its weight file (Q4_0 sizes, %0.1f–%.1f GB) from a page cache of %d GiB (least recently read "+
				"files leave first) or from disk; swap time is the fitted model of the swap-latency table (%.2f s + %.2f s/GB from "+
				"disk + %.2f s/GB from cache, measured %s).",
				requests, minFile(setup)/1e9, maxFile(setup)/1e9, cacheBytes>>30,
				fit.Cost.Fixed.Seconds(), fit.Cost.ColdPerGB, fit.Cost.WarmPerGB, fit.Date)
		}
		for _, r := range rs {
			s.Rows = append(s.Rows, []string{r.Label, fmt.Sprint(r.Loads), gb(r.DiskBytes), gb(r.CacheBytes), gb(r.PrefetchBytes),
				fmtHours(r.SwapTime), fmt.Sprint(r.Violations), peak(r)})
			bars = append(bars, bar{Label: tr.Name + ": " + shortAlt(r.Label), Value: r.SwapTime.Hours()})
		}
		verdict = append(verdict, judge(tr.Name, alts, rs)...)
		out = append(out, s)
	}
	// How much the page cache's size changes prefetch's worth.
	var sens, disk []string
	for _, cache := range []uint64{4 << 30, 8 << 30, 16 << 30} {
		var parts []string
		for _, tr := range setup.Traces {
			var with, without sim.Result
			for _, a := range alts[:2] {
				st := storage(cache)
				r, err := sim.Replay(setup.Catalogue, tr, a.Config, sim.Env{Budget: setup.Limits.Budget, Storage: &st})
				if err != nil {
					return nil, err
				}
				if a.Prefetch != nil {
					with = r
				} else {
					without = r
				}
			}
			parts = append(parts, fmt.Sprintf("%s %+.1f %%", tr.Name, 100*(with.SwapTime.Seconds()/without.SwapTime.Seconds()-1)))
			if cache == cacheBytes {
				disk = append(disk, fmt.Sprintf("%s %+.0f %%", tr.Name, 100*(float64(with.DiskBytes)/float64(max(without.DiskBytes, 1))-1)))
			}
		}
		sens = append(sens, fmt.Sprintf("%d GiB: %s", cache>>30, strings.Join(parts, ", ")))
	}
	verdict = append(verdict, proposal(names, alts, all))
	summary := section{Title: "Policy against the alternatives: verdict", Notes: append(verdict,
		"Swap time with prefetch against without (ours, max_loaded 2), by page-cache size: "+strings.Join(sens, "; ")+
			". A small cache holds few files, so a swap more often finds its file on disk, which is what prefetch "+
			"saves; a large one keeps most files anyway, and prefetch only saves the first read of each.",
		fmt.Sprintf("Prefetch changes the bytes that swaps read from disk by: %s (ours, max_loaded 2, %d GiB cache). Swap time falls "+
			"much less, because on this CPU-only machine a swap's time grows with the model even when the file comes from the "+
			"page cache (%.1f s per GB: the runner's loading and the first forward pass on 2 shared cores, against %.1f s per GB "+
			"more from disk); where a GPU takes that work, the disk is a larger share of a swap and prefetch saves more.",
			strings.Join(disk, ", "), cacheBytes>>30, fit.Cost.WarmPerGB, fit.Cost.ColdPerGB-fit.Cost.WarmPerGB))}
	summary.Plots = map[string]string{"bench-alternatives.svg": barChart("Total swap time on each trace (hours)", " h", bars)}
	return append(out, summary), nil
}

// judge checks the acceptance rule on one trace: ours at its default has
// fewer loads and less swap time than every alternative that kept the
// budget there, and no violations; it says which alternative does better
// where one does, and at what price.
func judge(trace string, alts []sim.Alternative, rs []sim.Result) []string {
	def := rs[0]
	var out []string
	var beaten, lost, cheats []string
	for i, r := range rs {
		if alts[i].Ours {
			continue
		}
		better := r.Loads <= def.Loads || r.SwapTime <= def.SwapTime
		switch {
		case r.Violations > 0 && better:
			cheats = append(cheats, fmt.Sprintf("%s (%d loads, %s) by breaking the budget %d times, up to %s GiB loaded",
				r.Label, r.Loads, fmtHours(r.SwapTime), r.Violations, peak(r)))
		case r.Violations > 0:
		case better:
			lost = append(lost, fmt.Sprintf("%s (%d loads, %s)", r.Label, r.Loads, fmtHours(r.SwapTime)))
		default:
			beaten = append(beaten, r.Label)
		}
	}
	line := fmt.Sprintf("%s: %s: %d loads, %s swapping, %d violations; fewer loads and less swap time than every alternative "+
		"that kept the budget here (%s): %s", trace, def.Label, def.Loads, fmtHours(def.SwapTime), def.Violations,
		strings.Join(beaten, ", "), yesNo(len(lost) == 0 && def.Violations == 0))
	if len(lost) > 0 {
		line += "; not against " + strings.Join(lost, ", ")
	}
	out = append(out, line)
	if len(cheats) > 0 {
		out = append(out, fmt.Sprintf("%s: doing as well or better than the default only by ignoring the budget: %s.", trace, strings.Join(cheats, "; ")))
	}
	return out
}

// proposal names the configuration of ours with the least swap time among
// the rows that kept the budget on every trace, if one is best everywhere.
func proposal(names []string, alts []sim.Alternative, all [][]sim.Result) string {
	bestEverywhere := func(i int) bool {
		for _, rs := range all {
			if rs[i].Violations > 0 {
				return false
			}
			for _, r := range rs {
				if r.Violations == 0 && (r.SwapTime < rs[i].SwapTime || r.Loads < rs[i].Loads) {
					return false
				}
			}
		}
		return true
	}
	for i, a := range alts {
		if !a.Ours || !bestEverywhere(i) {
			continue
		}
		var parts []string
		for t, rs := range all {
			parts = append(parts, fmt.Sprintf("%s %d loads and %s against %d and %s", names[t], rs[i].Loads, fmtHours(rs[i].SwapTime),
				rs[0].Loads, fmtHours(rs[0].SwapTime)))
		}
		return fmt.Sprintf("Proposed default: **%s**, the fewest loads and least swap time of every configuration that kept the budget, "+
			"on every trace (%s for today's default). The budget already bounds what is loaded; the count limit of 2 only forces "+
			"swaps between small models that fit together.", a.Label, strings.Join(parts, "; "))
	}
	return "No configuration has the fewest loads and least swap time among the budget-keeping rows on every trace."
}

func gb(b uint64) string { return fmt.Sprintf("%.0f", float64(b)/1e9) }

func fmtHours(d time.Duration) string {
	if d < time.Hour {
		return fmt.Sprintf("%.0f min", d.Minutes())
	}
	return fmt.Sprintf("%.2f h", d.Hours())
}

func shortAlt(l string) string {
	l = strings.ReplaceAll(l, "OLLAMA_MAX_LOADED_MODELS=", "max ")
	l = strings.ReplaceAll(l, " (as many as fit)", "")
	return strings.ReplaceAll(l, " (default)", "")
}

func minFile(s sim.Setup) float64 {
	m := 0.0
	for _, n := range s.Eligible {
		if f := float64(s.Catalogue[n].FileBytes); m == 0 || f < m {
			m = f
		}
	}
	return m
}

func maxFile(s sim.Setup) float64 {
	m := 0.0
	for _, n := range s.Eligible {
		m = max(m, float64(s.Catalogue[n].FileBytes))
	}
	return m
}
