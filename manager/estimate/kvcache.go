package estimate

import (
	"fmt"
	"slices"
)

// kvSetup is the context geometry that sizes the cache and the graph.
type kvSetup struct {
	numCtx   uint64 // per sequence, after the trained-context cap
	parallel uint64
	batch    uint64
	cacheBPE float64 // bytes per element of the cache type actually used
	fa       bool
}

// cacheBytesPerElement: the llama.cpp-engine estimate uses whole ratios of
// f16; the Ollama engine and llama-server allocate real ggml blocks (q8_0:
// 34 bytes per 32).
func cacheBytesPerElement(eng, typ string) (float64, error) {
	blocks := eng != EngineLlamaCpp
	switch typ {
	case "", "f16":
		return 2, nil
	case "q8_0":
		if blocks {
			return 34.0 / 32, nil
		}
		return 1, nil
	case "q4_0":
		if blocks {
			return 18.0 / 32, nil
		}
		return 0.5, nil
	}
	return 0, fmt.Errorf("kv cache type %q not supported (want f16, q8_0 or q4_0)", typ)
}

// slidingLayers says which layers use a sliding-window cache in the Ollama
// engine, and the cache's memory in tokens (0: no sliding layers).
func slidingLayers(h hparams) ([]bool, uint64) {
	out := make([]bool, h.layers)
	switch {
	case h.arch == "gemma3":
		if h.slidingWindow == 0 {
			return out, 0
		}
		// Every sixth layer is global (gemma3/model_text.go).
		for i := range out {
			out[i] = (i+1)%6 != 0
		}
		if len(h.swaPattern) > 0 {
			copy(out, h.swaPattern)
		}
		return out, h.slidingWindow
	case h.arch == "gptoss" || h.arch == "gpt-oss":
		// Even layers attend to a 128-token window but keep 4096 tokens.
		for i := range out {
			out[i] = i%2 == 0
		}
		return out, 4096
	case slices.Contains([]string{"olmo3", "gemma3n"}, h.arch) && len(h.swaPattern) > 0 && h.slidingWindow > 0:
		copy(out, h.swaPattern)
		return out, h.slidingWindow
	}
	return out, 0
}

func roundUp(n, to uint64) uint64 { return (n + to - 1) / to * to }

// kvCache returns the cache bytes per layer.
func kvCache(h hparams, eng string, s kvSetup) []uint64 {
	out := make([]uint64, h.layers)
	if eng == EngineOllama && h.embedding {
		return out // encoder models run without a cache
	}
	perToken := func(i int) float64 {
		return float64(h.headsKV[i]*(h.keyLen+h.valueLen)) * s.cacheBPE
	}
	if eng == EngineLlamaCpp {
		// GGML.GraphSize: num_ctx·parallel cells, no padding, no sliding
		// windows (gemma2 is estimated at full size).
		for i := range out {
			if h.heads[i] > 0 && h.headsKV[i] > 0 {
				out[i] = uint64(float64(s.numCtx*s.parallel) * perToken(i))
			}
		}
		return out
	}

	full, swaCells, sliding := cacheCells(h, s)
	return layerKV(h, s, full, swaCells, sliding)
}

// layerKV is the cache per layer when full layers hold full cells and
// sliding ones swa cells: K and V rows of every KV head for every cell.
// Layers without KV heads (recurrent layers) hold none.
func layerKV(h hparams, s kvSetup, full, swa uint64, sliding []bool) []uint64 {
	out := make([]uint64, h.layers)
	for i := range out {
		if h.headsKV[i] == 0 {
			continue
		}
		cells := full
		if sliding[i] {
			cells = swa
		}
		out[i] = uint64(float64(cells*h.headsKV[i]*(h.keyLen+h.valueLen)) * s.cacheBPE)
	}
	return out
}

// cacheCells is the Ollama engine's cell count for full and sliding-window
// layers (kvcache/causal.go Init: padded to 256; a window only shrinks the
// cache when its memory is below num_ctx), and which layers slide.
func cacheCells(h hparams, s kvSetup) (full, swa uint64, sliding []bool) {
	full = roundUp(s.parallel*s.numCtx, 256)
	sliding, memory := slidingLayers(h)
	swa = full
	if memory > 0 {
		if s.parallel > 1 {
			memory = max(memory, h.slidingWindow+1)
		}
		if memory < s.numCtx {
			swa = roundUp(s.parallel*memory+s.batch, 256)
		}
	}
	return full, swa, sliding
}

func sum(xs []uint64) uint64 {
	var s uint64
	for _, x := range xs {
		s += x
	}
	return s
}
