package estimate

// graphLlamaCpp is Ollama's full-offload compute-graph estimate for the
// llama.cpp engine (fs/ggml/ggml.go GraphSize). C = num_ctx·parallel.
// Architectures without a case use llm/server.go's fallback gqa·KV/6.
func graphLlamaCpp(h hparams, s kvSetup, kvTotal uint64, hasGateExps bool, gateShape1 uint64) uint64 {
	b, E, V := s.batch, h.embd, h.vocab
	C := s.numCtx * s.parallel
	_, H := minMax(h.heads)
	_, Hkv := minMax(h.headsKV)
	k := h.keyLen
	var full uint64
	switch h.arch {
	case "llama", "llama4":
		full = max(4*b*(1+4*E+C*(1+H)), 4*b*(E+V))
		if !hasGateExps && gateShape1 > 0 {
			// older Mixtral files with per-expert ffn_gate.N tensors
			full = 4 * b * (2 + 3*E + C*(1+H) + 2*Hkv + gateShape1)
		}
	case "qwen2":
		full = max(4*b*(E+V), 4*b*(1+2*E+C+C*H))
	case "gemma", "gemma2", "gemma3", "gemma3n":
		full = max(4*b*(E+V), 4*b*(2+C+C*H+2*E+2*k*H))
		if h.arch == "gemma3n" {
			full *= 4
		}
	case "command-r":
		full = max(4*b*(E+V), 4*b*(2+4*E+C*(1+H)))
	case "phi2":
		full = max(4*b*(E+V), 4*b*(1+4*E+C+C*H))
	case "stablelm":
		full = 4 * b * (C*(1+H) + 3*E + 2)
	case "deepseek2":
		full = max(4*b*(3*E+V), 4*b*(3*E+2+C*(1+Hkv)+2*k*Hkv))
	}
	if full == 0 {
		minKV, _ := minMax(h.headsKV)
		full = H / max(minKV, 1) * kvTotal / 6
	}
	return full
}

// graphOllama approximates the compute buffer the Ollama engine reserves
// for its worst-case batch (runner/ollamarunner reserveWorstCaseGraph).
// ggml's allocator (ggml-alloc.c) gives a tensor memory when the node that
// produces it is reached and frees it after its last consumer, so the buffer
// is what is alive at the busiest point of the graph:
//
//   - always: the hidden state and the residual, 2·b·E f32.
//   - the attention masks (f16 b·cells with flash attention, f32 without;
//     none for encoders). With flash attention a mask is an f16 cast of the
//     f32 input (kvcache/causal.go buildMask), a node of the graph created
//     just before the first layer that reads it and freed after the last
//     one (the f32 input itself is measured not to count), so
//     a mask read by two or more layers is alive across the feed-forward of
//     the layers between them and adds to everything; a mask read by one
//     layer only (the single global layer of a 6-layer gemma3) coexists with
//     that layer's attention alone. Sliding-window models have two: the
//     window's for the sliding layers and the full context's for the global
//     ones (every sixth layer on gemma3, so on any real gemma3 the full mask
//     spans almost the whole graph and grows with num_ctx). Without flash
//     attention the same lifetime rule is assumed; every Ollama-engine
//     decoder we measure runs with flash attention, so that case is unchecked.
//   - then the larger of the two halves of a layer:
//     attention: q, k, v (b·(H·k + 2·Hkv·v) f32) and the f32 scores over all
//     cells without flash attention (softmax runs in place);
//     feed-forward: gate, up, activation and product, b·F f32 each per used
//     expert (up and activation only for ungated encoders), plus the router;
//     or the logits of the output rows.
//
// Each term is a tensor of the real graph, so the estimate scales with the
// same parameters the allocation does; checked against real loads by
// TestAccuracyCPU, not fitted to them.
func graphOllama(h hparams, s kvSetup, full, swa uint64, sliding []bool) uint64 {
	b, E := s.batch, h.embd
	_, H := minMax(h.heads)
	_, Hkv := minMax(h.headsKV)

	maskBytes := uint64(4)
	if s.fa {
		maskBytes = 2
	}
	// spanning: masks alive across layers; attnOnly: a mask read by one
	// layer, alive only during that layer's attention.
	var spanning, attnOnly uint64
	if !h.embedding {
		for _, m := range masks(h, sliding) {
			bytes := maskBytes * b * full
			if m.sliding {
				bytes = maskBytes * b * swa
			}
			if m.first < m.last {
				spanning += bytes
			} else {
				attnOnly = max(attnOnly, bytes)
			}
		}
	}
	base := 4*2*b*E + spanning

	attn := 4*b*(H*h.keyLen+2*Hkv*h.valueLen) + attnOnly
	if !s.fa {
		attn += 4 * b * full * H
	}
	ffnTensors := uint64(4)
	if h.arch == "bert" {
		ffnTensors = 2 // up and GELU, no gate
	}
	ffn := ffnTensors * 4 * b * h.ffn * max(h.used, 1)
	if h.experts > 0 {
		ffn += 4 * b * h.experts // router logits
	}
	var logits uint64
	if !h.embedding {
		logits = 4 * s.parallel * h.vocab
	}
	return base + max(attn, ffn, logits)
}

// maskUse is the span of layers that read one attention mask.
type maskUse struct {
	sliding     bool
	first, last int
}

// masks lists the masks a decoder's graph builds: one for the full-context
// layers and one for the sliding-window layers, each with the first and
// last layer that reads it. Layers without KV heads (recurrent layers of
// hybrid models) read no mask. sliding may be shorter than the layer count
// (nil: no sliding layers).
func masks(h hparams, sliding []bool) []maskUse {
	var out []maskUse
	for _, kind := range []bool{false, true} {
		m := maskUse{sliding: kind, first: -1}
		for i := range h.layers {
			if i >= len(h.headsKV) || h.headsKV[i] == 0 || (i < len(sliding) && sliding[i]) != kind {
				continue
			}
			if m.first < 0 {
				m.first = i
			}
			m.last = i
		}
		if m.first >= 0 {
			out = append(out, m)
		}
	}
	return out
}
