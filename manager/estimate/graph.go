package estimate

import "slices"

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
// ggml's allocator reuses a tensor's memory once its last consumer has run,
// so the buffer is what is alive at the busiest point of one layer:
//
//   - always: the hidden state and the residual, 2·b·E f32, and the
//     attention mask, which every layer reads (f16 b·cells with flash
//     attention, f32 without; none for encoders). With sliding windows
//     the mask that spans all layers is the window's.
//   - then the larger of the two halves of a layer:
//     attention: q, k, v (b·(H·k + 2·Hkv·v) f32), the f32 scores over all
//     cells without flash attention (softmax runs in place), and a full
//     context mask used only by the global layers of sliding-window models;
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
	var mask, globalMask uint64
	if !h.embedding {
		mask = maskBytes * b * full
		if slices.Contains(sliding, true) {
			mask = maskBytes * b * swa
			globalMask = maskBytes * b * full
		}
	}
	base := 4*2*b*E + mask

	attn := 4*b*(H*h.keyLen+2*Hkv*h.valueLen) + globalMask
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
