package estimate

import (
	"slices"
	"strings"
)

// The v0.30+ accounting: Ollama starts upstream llama-server (llama.cpp
// b9452 at v0.30.0, b10969 at v0.34.2) with -c num_ctx·parallel, -np
// parallel, --flash-attn auto, the default batch (n_ubatch 512) unless
// num_batch is set, and reports in /api/ps the buffers llama-server logs
// (llm/llama_server.go memoryParsingWriter): "<backend> model|KV|compute|
// output|RS buffer size". size_vram is every buffer not on a CPU or host
// backend; at full offload size is size_vram, so the CPU_Mapped token
// embeddings and the CUDA_Host compute and output buffers drop out.

// llamaServerUbatch is llama-server's default physical batch (n_ubatch).
const llamaServerUbatch = 512

// llamaServer estimates the buffers llama-server allocates for m.
func llamaServer(m Model, h hparams, s kvSetup, o Options) Breakdown {
	b := Breakdown{Engine: EngineLlamaServer, NumCtx: int(s.numCtx)}
	cells, swaCells, sliding := llamaCells(h, s)
	b.KVCache = sum(llamaKV(h, s, cells, swaCells, sliding))
	b.Recurrent = llamaRecurrent(m, h, s)
	b.Weights = llamaWeights(m.Tensors, o.Device)
	b.Graph = llamaCompute(h, s, cells, swaCells, sliding, o.Device)
	b.Output = llamaOutput(h, s)
	b.Projector = projectorBytes(m.ProjectorTensors)
	b.Total = b.Weights + b.KVCache + b.Graph + b.Recurrent
	if o.Device == CPU {
		// A CPU-only load counts the host buffers; on a GPU the output
		// buffer is CUDA_Host memory, outside size_vram and so outside size.
		b.Total += b.Output
	}
	b.addGPUOverhead(o)
	return b
}

// llamaServerFlashAttention: Ollama passes --flash-attn auto whenever every
// GPU supports it (llm/llama_server.go LlamaServerFlashAttention), and
// llama.cpp's auto turns it on where the backend has the kernel: equal K
// and V head sizes, or DeepSeek's MLA (576/512).
func (h hparams) llamaServerFlashAttention(fa FlashAttention) bool {
	switch fa {
	case FlashAttentionOn:
		return true
	case FlashAttentionOff:
		return false
	}
	return h.keyLen != 0 && (h.keyLen == h.valueLen || (h.keyLen == 576 && h.valueLen == 512))
}

// llamaCells is the KV cache geometry llama.cpp allocates: num_ctx·parallel
// cells padded to 256 for full layers, and for sliding-window layers
// GGML_PAD(min(cells, n_swa·parallel + n_ubatch), 256)
// (src/llama-kv-cache-iswa.cpp; --swa-full is off by default).
func llamaCells(h hparams, s kvSetup) (cells, swa uint64, sliding []bool) {
	cells = roundUp(s.numCtx*s.parallel, 256)
	sliding = llamaSlidingLayers(h)
	swa = cells
	if slices.Contains(sliding, true) {
		swa = roundUp(min(cells, h.slidingWindow*s.parallel+s.batch), 256)
	}
	return cells, swa, sliding
}

// swaPeriods is how llama.cpp lays out sliding-window layers where the GGUF
// has no sliding_window_pattern: every p-th layer is global, the others
// slide (hparams.set_swa_pattern in src/llama-model.cpp). Phi-3 has a
// sliding_window key but llama.cpp runs it without SWA.
var swaPeriods = map[string]int{
	"gemma2": 2, "gemma3": 6, "gemma3n": 5, "gemma-embedding": 6, "cohere2": 4,
	"olmo3": 4, "gptoss": 2, "gpt-oss": 2, "exaone4": 4, "llama4": 4,
}

// llamaSlidingLayers says which layers use the sliding-window cache.
func llamaSlidingLayers(h hparams) []bool {
	out := make([]bool, h.layers)
	if h.slidingWindow == 0 {
		return out
	}
	if len(h.swaPattern) > 0 {
		copy(out, h.swaPattern)
		return out
	}
	p, ok := swaPeriods[h.arch]
	if !ok {
		return out
	}
	for i := range out {
		out[i] = i%p < p-1
	}
	return out
}

// llamaKV is the KV cache per layer; encoder models (pooling_type) run
// without a cache.
func llamaKV(h hparams, s kvSetup, cells, swa uint64, sliding []bool) []uint64 {
	if h.embedding {
		return make([]uint64, h.layers)
	}
	return layerKV(h, s, cells, swa, sliding)
}

// llamaRecurrent is the recurrent-state (RS) buffer of state-space and
// hybrid models: per recurrent layer and sequence, the convolution state
// (d_conv−1)·(d_inner + 2·groups·d_state) and the SSM state, both f32
// (llama_hparams n_embd_r, n_embd_s). Layers with no KV heads count as
// recurrent in a model that has SSM or short-convolution keys.
func llamaRecurrent(m Model, h hparams, s kvSetup) uint64 {
	md := meta{arch: h.arch, kv: m.KV}
	var r, st uint64
	switch {
	case md.has("ssm.conv_kernel"):
		conv, _ := md.uint("ssm.conv_kernel")
		inner, _ := md.uint("ssm.inner_size")
		state, _ := md.uint("ssm.state_size")
		groups, _ := md.uint("ssm.group_count")
		if conv > 0 {
			r = (conv - 1) * (inner + 2*groups*state)
		}
		st = state * inner
		if strings.HasPrefix(h.arch, "qwen3next") || strings.HasPrefix(h.arch, "qwen35") {
			// Gated delta net: a state_size² matrix per value head.
			heads, _ := md.uint("ssm.time_step_rank")
			st = state * state * heads
		}
	case md.has("shortconv.l_cache"):
		l, _ := md.uint("shortconv.l_cache")
		if l > 0 {
			r = h.embd * (l - 1)
		}
	case md.has("wkv.head_size"):
		hs, _ := md.uint("wkv.head_size")
		r, st = 2*h.embd, h.embd*hs
	default:
		return 0
	}
	var layers uint64
	for i := range h.layers {
		if h.headsKV[i] == 0 || h.arch == "mamba" || h.arch == "mamba2" || strings.HasPrefix(h.arch, "rwkv") {
			layers++
		}
	}
	return 4 * (r + st) * layers * max(s.parallel, 1)
}

// cudaRowPad is MATRIX_ROW_PADDING: CUDA buffers pad each quantized
// tensor's rows to a multiple of 512 elements (ggml-cuda.cu
// get_alloc_size).
const cudaRowPad = 512

// llamaWeights is the model buffer. On a GPU at full offload: every tensor
// but token_embd (llama.cpp keeps the input embeddings in host memory,
// CPU_Mapped, outside size_vram), padded as the CUDA buffer pads it, and a
// tied model's token_embd once more as its output layer. On a CPU: every
// tensor once, as mapped from the file (32-byte GGUF alignment).
func llamaWeights(ts []Tensor, d Device) uint64 {
	hasOutput := slices.ContainsFunc(ts, func(t Tensor) bool { return group(t.Name) == "output" })
	var sum uint64
	for _, t := range ts {
		b := tensorBytes(t)
		if d == CPU {
			sum += padTo(b, 32)
			continue
		}
		gpu := padTo(b+cudaRowPadding(t), 128)
		switch {
		case t.Name == "token_embd.weight" && !hasOutput:
			sum += gpu // the duplicated output, on the GPU
		case t.Name == "token_embd.weight":
		default:
			sum += gpu
		}
	}
	return sum
}

// cudaRowPadding is the extra bytes CUDA allocates after a quantized
// tensor whose rows are not a multiple of 512 elements.
func cudaRowPadding(t Tensor) uint64 {
	if len(t.Shape) == 0 || t.Shape[0]%cudaRowPad == 0 {
		return 0
	}
	switch strings.ToUpper(t.Type) {
	case "F32", "F16", "BF16", "I8", "I16", "I32", "I64", "F64":
		return 0
	}
	missing := cudaRowPad - t.Shape[0]%cudaRowPad
	return tensorBytes(Tensor{Type: t.Type, Shape: []uint64{missing}})
}

// llamaOutput is the output buffer: logits (f32, vocabulary wide) for one
// output per sequence, and the embedding row of an embedding model
// (llama_context::output_reserve with n_seq_max outputs).
func llamaOutput(h hparams, s kvSetup) uint64 {
	n := max(s.parallel, 1)
	if h.embedding {
		return 4 * h.embd * n
	}
	return 4 * h.vocab * n
}

// llamaCompute is the compute buffer llama.cpp reserves for its worst-case
// graph: n_ubatch tokens, all of them outputs (llama_context graph_reserve).
// ggml-alloc gives a tensor memory from the node that makes it to its last
// consumer, so the buffer holds the busiest point:
//
//   - during the layers: the attention masks (an f32 input over every cell,
//     and its f16 cast with flash attention; one per cache: full and
//     sliding), the residual stream (2·T·E f32), and the larger of the
//     attention (q, k, v; the f32 scores over all cells without flash
//     attention) and the feed-forward (gate, up and their product, per used
//     expert, plus the router);
//   - at the end, the masks freed: the final norm and the logits of every
//     token, 4·T·(E + V), which is what most models' buffer is (Llama 3 8B:
//     4·512·(4096 + 128256) B = 258.5 MiB, the figure llama.cpp logs).
//
// A CPU-only load also holds the embeddings looked up for the batch.
func llamaCompute(h hparams, s kvSetup, cells, swa uint64, sliding []bool, d Device) uint64 {
	T, E := s.batch, h.embd
	_, H := minMax(h.heads)
	_, Hkv := minMax(h.headsKV)

	maskPerCell := uint64(4)
	if s.fa {
		maskPerCell += 2
	}
	var masks uint64
	if !h.embedding {
		full, slide := false, false
		for i := range h.layers {
			if h.headsKV[i] == 0 {
				continue
			}
			if sliding[i] {
				slide = true
			} else {
				full = true
			}
		}
		if full {
			masks += maskPerCell * T * cells
		}
		if slide {
			masks += maskPerCell * T * swa
		}
	} else {
		masks = maskPerCell * T * T // an encoder attends over its batch
	}

	attn := 4 * T * (H*h.keyLen + 2*Hkv*h.valueLen + H*h.valueLen)
	if !s.fa {
		kv := cells
		if h.embedding {
			kv = T
		}
		attn += 4 * T * kv * H
	}
	used := max(h.used, 1)
	ffn := 3 * 4 * T * h.ffn * used
	if h.experts > 0 {
		ffn += 4*T*E*used + 3*4*T*h.experts // expert outputs, router logits, probabilities, weights
	}
	layers := masks + 2*4*T*E + max(attn, ffn)

	out := 4 * T * E
	if !h.embedding {
		out += 4 * T * h.vocab
	}
	total := max(layers, out)
	if d == CPU {
		total += 4 * T * E
	}
	return total
}
