package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/sim"
	"github.com/vramkeeper/vramkeeper/manager"
	keeper "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/ollama"
	"github.com/vramkeeper/vramkeeper/manager/prefetch"
)

// swapModel is one size of the swap bench: a released model's shape.
type swapModel struct {
	Name, Preset, Type string
}

// swapModels span 0.5–4 GB files; together about 7.7 GB of blobs.
var swapModels = []swapModel{
	{"swap-qwen2-0.5b-q8", "qwen2-0.5b", "Q8_0"},
	{"swap-llama-1b-q8", "llama-1b", "Q8_0"},
	{"swap-llama-3b-q4", "llama-3b", "Q4_0"},
	{"swap-mistral-7b-q4", "mistral-7b", "Q4_0"},
}

// swapCase is one way a swap can find its file.
type swapCase struct {
	Name   string
	Direct bool // straight to Ollama, not through the proxy
	// Prepare puts the file in the state the case names.
	Prepare func(ctx context.Context, path string) error
}

// swapPoint is one timed swap.
type swapPoint struct {
	Model, Case string
	FileBytes   int64
	Resident    float64 // fraction of the file cached when the request left
	TTFT        time.Duration
	// Load is the load's share of TTFT: the manager's own timing of it
	// through the proxy, Ollama's load_duration straight.
	Load time.Duration
}

// swapFit is the swap-time model the policy comparison uses, fitted to the
// proxy's swaps, with the prefetcher's read rate; saved beside the docs so
// that `-only alternatives` reuses the last measurement.
type swapFit struct {
	Cost         sim.SwapCost
	PrefetchRate float64 // bytes/s, the prefetcher's median
	Machine      string
	Date         string
}

const swapFitFile = "bench-swap-fit.json"

func swapSections(ctx context.Context, log *slog.Logger, srv *server, reps int, docDir, machine string) ([]section, *swapFit, error) {
	if srv == nil {
		return nil, nil, errors.New("the swap bench needs the Ollama binary (scripts/ollama-build.sh)")
	}
	work, err := os.MkdirTemp("", "vk-bench-swap-")
	if err != nil {
		return nil, nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(work)
	paths := map[string]string{}
	sizes := map[string]int64{}
	for _, sm := range swapModels {
		p, n, err := pushLarge(ctx, log, srv, work, sm)
		if err != nil {
			return nil, nil, err
		}
		paths[sm.Name], sizes[sm.Name] = p, n
	}
	// The blobs now sit in Ollama's store; drop them from Ollama when done.
	defer func() {
		for _, sm := range swapModels {
			_ = srv.Client.Delete(context.Background(), &api.DeleteRequest{Model: sm.Name})
		}
	}()

	m, stop, err := startManager(manager.Options{Runtime: ollama.New(srv.URL, nil), GPU: staticGPU{16 << 30}, Settings: manager.Settings{NumCtx: 2048, MaxLoaded: 1}})
	if err != nil {
		return nil, nil, err
	}
	defer stop()
	if err := m.Refresh(ctx); err != nil {
		return nil, nil, fmt.Errorf("refresh: %w", err)
	}
	proxy := httptest.NewServer(keeper.New(m, srv.URL, keeper.Options{Log: quiet()}).Handler())
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	viaProxy := api.NewClient(pu, proxy.Client())
	events, unsubscribe := m.Subscribe(64)
	defer unsubscribe()
	// loaded waits for the manager's report of model's load.
	loaded := func(model string) (time.Duration, error) {
		deadline := time.After(time.Minute)
		for {
			select {
			case ev := <-events:
				if ev.Kind == manager.EventLoaded && strings.TrimSuffix(ev.Model, ":latest") == model {
					return ev.Duration, nil
				}
			case <-deadline:
				return 0, fmt.Errorf("no load event for %s within a minute", model)
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}

	warmer := prefetch.New(prefetch.Options{Margin: 1 << 30})
	var warmRates []float64
	warmTook := map[string][]time.Duration{} // by blob path
	drop := func(_ context.Context, path string) error { return prefetch.Drop(path) }
	// Warm the plain way (a read), so "warm" does not lean on the prefetcher.
	read := func(_ context.Context, path string) error {
		if r, err := prefetch.Resident(path); err == nil && r >= 0.999 {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(io.Discard, f)
		return err
	}
	warmUp := func(ctx context.Context, path string) error {
		if err := prefetch.Drop(path); err != nil {
			return err
		}
		res, err := warmer.Warm(ctx, path)
		if err != nil {
			return err
		}
		if res.Stopped != prefetch.StopDone {
			return fmt.Errorf("prefetch of %s stopped (%s) at %.0f %%", path, res.Stopped, 100*res.Resident)
		}
		warmRates = append(warmRates, float64(res.Read)/res.Took.Seconds())
		warmTook[path] = append(warmTook[path], res.Took)
		return nil
	}
	cases := []swapCase{
		{Name: "cold", Prepare: drop},
		{Name: "warm", Prepare: read},
		{Name: "prefetched", Prepare: warmUp},
		{Name: "raw cold", Direct: true, Prepare: drop},
		{Name: "raw warm", Direct: true, Prepare: read},
	}
	unload := func(name string, direct bool) error {
		if direct {
			zero := api.Duration{}
			if err := srv.Client.Generate(ctx, &api.GenerateRequest{Model: name, KeepAlive: &zero}, func(api.GenerateResponse) error { return nil }); err != nil {
				return fmt.Errorf("unload %s: %w", name, err)
			}
		} else if err := m.Unload(ctx, name); err != nil {
			return fmt.Errorf("unload %s: %w", name, err)
		}
		return srv.waitGone(ctx)
	}
	run := func(sm swapModel, c swapCase) (swapPoint, error) {
		path := paths[sm.Name]
		if err := c.Prepare(ctx, path); err != nil {
			return swapPoint{}, fmt.Errorf("%s, %s: %w", sm.Name, c.Name, err)
		}
		res, err := prefetch.Resident(path)
		if err != nil {
			return swapPoint{}, err
		}
		cl := viaProxy
		if c.Direct {
			cl = srv.Client
		}
		d, load, err := firstToken(ctx, cl, sm.Name)
		if err != nil {
			return swapPoint{}, fmt.Errorf("%s, %s: %w", sm.Name, c.Name, err)
		}
		if !c.Direct {
			if load, err = loaded(sm.Name); err != nil {
				return swapPoint{}, err
			}
		}
		if err := unload(sm.Name, c.Direct); err != nil {
			return swapPoint{}, err
		}
		return swapPoint{Model: sm.Name, Case: c.Name, FileBytes: sizes[sm.Name], Resident: res, TTFT: d, Load: load}, nil
	}
	// One untimed swap per model: Ollama's first look at a new model.
	for _, sm := range swapModels {
		if _, err := run(sm, cases[1]); err != nil {
			return nil, nil, err
		}
	}
	var pts []swapPoint
	var loads []string
	for rep := range reps {
		loads = append(loads, loadAvg())
		for mi, sm := range swapModels {
			// Rotate the case order each round so no case always follows
			// another (a cold run after a warm one of a different model...).
			for ci := range cases {
				c := cases[(ci+rep+mi)%len(cases)]
				p, err := run(sm, c)
				if err != nil {
					return nil, nil, err
				}
				pts = append(pts, p)
				log.Info("swap", "model", sm.Name, "case", c.Name, "ttft", p.TTFT.Round(time.Millisecond),
					"load", p.Load.Round(time.Millisecond), "resident", fmt.Sprintf("%.2f", p.Resident))
			}
		}
	}
	fit, err := fitSwapCost(pts)
	if err != nil {
		return nil, nil, err
	}
	sf := swapFit{Cost: fit, PrefetchRate: medianF(warmRates), Machine: machine, Date: time.Now().UTC().Format("2006-01-02")}
	if docDir != "" {
		b, _ := json.MarshalIndent(sf, "", "  ")
		if err := os.WriteFile(filepath.Join(docDir, swapFitFile), append(b, '\n'), 0o644); err != nil {
			return nil, nil, fmt.Errorf("saving the swap fit: %w", err)
		}
	}
	took := map[string]time.Duration{}
	for _, sm := range swapModels {
		took[sm.Name] = median(warmTook[paths[sm.Name]])
	}
	sec := swapTable(pts, cases, sf, reps, took)
	sec.Notes = append(sec.Notes, fmt.Sprintf("The machine is shared: its 1-minute load average at the start of each round was %s "+
		"(2 cores), so single runs vary a lot; the medians and the alternation are what make the columns comparable.", strings.Join(loads, ", ")))
	return []section{sec}, &sf, nil
}

// firstToken times a generate request from sending to its first streamed
// chunk: the load, the prompt, one token. It also returns the load time
// Ollama reports (zero when the model was loaded already).
func firstToken(ctx context.Context, c *api.Client, model string) (time.Duration, time.Duration, error) {
	forever := api.Duration{Duration: -1}
	t0 := time.Now()
	var first, load time.Duration
	err := c.Generate(ctx, &api.GenerateRequest{Model: model, Prompt: "Hi", KeepAlive: &forever,
		Options: map[string]any{"num_ctx": 2048, "num_predict": 1, "temperature": 0}},
		func(r api.GenerateResponse) error {
			if first == 0 {
				first = time.Since(t0)
			}
			if r.Done {
				load = r.LoadDuration
			}
			return nil
		})
	if err != nil {
		return 0, 0, err
	}
	return first, load, nil
}

// pushLarge writes sm to a file under dir, uploads it as a blob, creates
// the model and deletes the file; it returns the blob's path in Ollama's
// store and its size.
func pushLarge(ctx context.Context, log *slog.Logger, srv *server, dir string, sm swapModel) (string, int64, error) {
	spec, err := ggufgen.Preset(sm.Preset, sm.Type)
	if err != nil {
		return "", 0, err
	}
	file := filepath.Join(dir, sm.Name+".gguf")
	t0 := time.Now()
	n, err := ggufgen.WriteFile(file, spec)
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(file)
	if err := srv.CreateModelFile(ctx, sm.Name, file); err != nil {
		return "", 0, err
	}
	show, err := srv.Client.Show(ctx, &api.ShowRequest{Model: sm.Name})
	if err != nil {
		return "", 0, fmt.Errorf("show %s: %w", sm.Name, err)
	}
	paths, err := prefetch.ModelPaths(show.Modelfile)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", sm.Name, err)
	}
	log.Info("swap model ready", "model", sm.Name, "bytes", n, "blob", paths[0], "took", time.Since(t0).Round(time.Second))
	return paths[0], n, nil
}

// fitSwapCost fits time = Fixed + ColdPerGB·cold + WarmPerGB·warm by least
// squares to the proxy's swaps (cold, warm and prefetched alike), where
// cold and warm are the file's bytes not cached and cached when the
// request left.
func fitSwapCost(pts []swapPoint) (sim.SwapCost, error) {
	var xs [][3]float64
	var ys []float64
	for _, p := range pts {
		if p.Case == "raw cold" || p.Case == "raw warm" {
			continue
		}
		gb := float64(p.FileBytes) / 1e9
		xs = append(xs, [3]float64{1, gb * (1 - p.Resident), gb * p.Resident})
		ys = append(ys, p.TTFT.Seconds())
	}
	beta, err := leastSquares3(xs, ys)
	if err != nil {
		return sim.SwapCost{}, fmt.Errorf("fitting swap times: %w", err)
	}
	return sim.SwapCost{Fixed: time.Duration(beta[0] * float64(time.Second)), ColdPerGB: beta[1], WarmPerGB: beta[2]}, nil
}

// leastSquares3 solves the 3-parameter normal equations by Gaussian
// elimination with partial pivoting.
func leastSquares3(xs [][3]float64, ys []float64) ([3]float64, error) {
	var a [3][4]float64
	for i, x := range xs {
		for r := range 3 {
			for c := range 3 {
				a[r][c] += x[r] * x[c]
			}
			a[r][3] += x[r] * ys[i]
		}
	}
	for col := range 3 {
		p := col
		for r := col + 1; r < 3; r++ {
			if abs(a[r][col]) > abs(a[p][col]) {
				p = r
			}
		}
		if abs(a[p][col]) < 1e-12 {
			return [3]float64{}, errors.New("singular: the swaps do not vary enough in size and caching")
		}
		a[col], a[p] = a[p], a[col]
		for r := range 3 {
			if r != col {
				f := a[r][col] / a[col][col]
				for c := col; c < 4; c++ {
					a[r][c] -= f * a[col][c]
				}
			}
		}
	}
	return [3]float64{a[0][3] / a[0][0], a[1][3] / a[1][1], a[2][3] / a[2][2]}, nil
}

func abs(x float64) float64 { return max(x, -x) }

func medianF(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func swapTable(pts []swapPoint, cases []swapCase, fit swapFit, reps int, prefetchTook map[string]time.Duration) section {
	s := section{
		Title: "Swap latency",
		Intro: fmt.Sprintf("Time from a request for a model that is not loaded to its first token (`/api/generate`, prompt \"Hi\", "+
			"`num_predict` 1, `num_ctx` 2048), for generated models with released models' shapes (internal/ggufgen presets; synthetic "+
			"weights, real sizes) pushed to a real Ollama through `/api/blobs` + `/api/create`. **cold**, **warm**, **prefetched** go "+
			"through VRAM Keeper's proxy (manager and manager/api in-process, max_loaded 1, so the request loads the model): cold "+
			"after `posix_fadvise(DONTNEED)` dropped the blob from the page cache (after a sync), warm with the blob in the page cache "+
			"(read beforehand), prefetched after a drop and then manager/prefetch's `Warm` on the blob, as the manager does when idle. "+
			"**raw** sends the same request straight to Ollama. Medians of %d runs per cell, cases rotated in each round; every run "+
			"starts with nothing loaded. Each cell: time to the first token (the load's share: the manager's own timing through "+
			"the proxy, Ollama's `load_duration` straight).", reps),
		Header: []string{"model (file)", "cold", "warm", "prefetched", "raw cold", "raw warm", "prefetched ÷ cold: first token",
			"load", "the prefetch took (idle time)"},
	}
	var bars []bar
	for _, sm := range swapModels {
		ttft := map[string][]time.Duration{}
		load := map[string][]time.Duration{}
		var size int64
		for _, p := range pts {
			if p.Model == sm.Name {
				ttft[p.Case] = append(ttft[p.Case], p.TTFT)
				load[p.Case] = append(load[p.Case], p.Load)
				size = p.FileBytes
			}
		}
		row := []string{fmt.Sprintf("%s %s (%.2f GB)", sm.Preset, sm.Type, float64(size)/1e9)}
		for _, c := range cases {
			row = append(row, fmt.Sprintf("%s (load %s)", fmtDur(median(ttft[c.Name])), fmtDur(median(load[c.Name]))))
		}
		ratio := func(m map[string][]time.Duration) string {
			return fmt.Sprintf("%.2f", float64(median(m["prefetched"]))/float64(median(m["cold"])))
		}
		row = append(row, "**"+ratio(ttft)+"**", ratio(load), fmtDur(prefetchTook[sm.Name]))
		s.Rows = append(s.Rows, row)
		for _, c := range []string{"cold", "prefetched", "raw cold"} {
			bars = append(bars, bar{Label: fmt.Sprintf("%s %s: %s", sm.Preset, sm.Type, c), Value: median(ttft[c]).Seconds()})
		}
	}
	s.Notes = append(s.Notes,
		fmt.Sprintf("Fitted swap time (least squares over the proxy's runs, bytes read from disk and from the page cache measured with "+
			"`mincore` just before each request): %.2f s + %.2f s per GB from disk + %.2f s per GB from the page cache. The policy "+
			"comparison below uses this model. The prefetcher read at %.0f MB/s (median).",
			fit.Cost.Fixed.Seconds(), fit.Cost.ColdPerGB, fit.Cost.WarmPerGB, fit.PrefetchRate/1e6),
		"On this CPU-only machine the first token also waits for the forward pass of the prompt on 2 shared cores, which grows "+
			"with the model; on a GPU that part shrinks and the file read is a larger share of a swap. The disk is a virtual disk "+
			"whose host may cache too, so cold reads here are faster than a laptop's SSD at worst.",
	)
	s.Plots = map[string]string{"bench-swap.svg": barChart("Time to first token of a swap (s): cold, prefetched, raw Ollama cold", " s", bars)}
	return s
}
