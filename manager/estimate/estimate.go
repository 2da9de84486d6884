package estimate

import (
	"fmt"
	"slices"
	"strings"
)

// DefaultGPUOverhead is what the GPU driver holds beyond Ollama's size_vram
// for one loaded model: the CUDA context, cuBLAS handles and the ggml pool.
// Published gaps are 107–555 MiB depending on the card (llama.cpp #20595,
// #23604; ollama #6160 measured 309 MiB). Calibrate with Options.GPUOverhead.
const DefaultGPUOverhead = 320 << 20

// Estimate predicts the memory of model m loaded with o. On Device CPU the
// Total is what Ollama's /api/ps reports as size on a machine without a GPU;
// on Device GPU it is size_vram at full offload plus the driver overhead and
// the vision projector, which Ollama's llama.cpp-engine accounting omits.
func Estimate(m Model, o Options) (Breakdown, error) {
	if err := checkTensors(m.Tensors); err != nil {
		return Breakdown{}, fmt.Errorf("estimate %s: %w", m.Arch, err)
	}
	h, err := readHparams(m)
	if err != nil {
		return Breakdown{}, fmt.Errorf("estimate %s: %w", m.Arch, err)
	}
	g := o.Generation
	eng := engine(m, h.arch, g)
	s, err := setup(h, eng, g, o)
	if err != nil {
		return Breakdown{}, fmt.Errorf("estimate %s: %w", h.arch, err)
	}
	if eng == EngineLlamaServer {
		return llamaServer(m, h, s, o), nil
	}

	kv := kvCache(h, eng, s)
	b := Breakdown{Engine: eng, NumCtx: int(s.numCtx), KVCache: sum(kv)}
	b.Projector = projectorBytes(m.ProjectorTensors)

	switch eng {
	case EngineLlamaCpp:
		b.Weights = weightsLlamaCpp(m.Tensors, h.layers)
		// Ollama only gives GPUs a graph; a CPU-only load reports none.
		if o.Device == GPU {
			_, hasExps := findTensor(m.Tensors, "blk.0.ffn_gate_exps.weight")
			var gate1 uint64
			if g, ok := findTensor(m.Tensors, "blk.0.ffn_gate.0.weight"); ok && len(g.Shape) > 1 {
				gate1 = g.Shape[1]
			}
			b.Graph = graphLlamaCpp(h, s, b.KVCache, hasExps, gate1)
		}
	case EngineOllama:
		b.Weights = weightsOllama(m.Tensors, h.layers, o.Device)
		full, swa, sliding := cacheCells(h, s)
		b.Graph = graphOllama(h, s, full, swa, sliding)
	}

	b.Total = b.Weights + b.KVCache + b.Graph
	b.addGPUOverhead(o)
	return b, nil
}

// addGPUOverhead adds, on a GPU, the driver's share and the vision
// projector, which no server counts in size_vram.
func (b *Breakdown) addGPUOverhead(o Options) {
	if o.Device != GPU {
		return
	}
	b.Overhead = o.GPUOverhead
	if b.Overhead == 0 {
		b.Overhead = DefaultGPUOverhead
	}
	b.Overhead *= uint64(max(o.Devices, 1)) // a CUDA/HIP context on each GPU
	b.Total += b.Overhead + b.Projector
}

// setup applies Ollama's defaults and caps to the options.
func setup(h hparams, eng string, g Generation, o Options) (kvSetup, error) {
	s := kvSetup{numCtx: 4096, parallel: 1, batch: 512}
	if o.NumCtx > 0 {
		s.numCtx = uint64(o.NumCtx)
	}
	if h.contextLength > 0 && s.numCtx > h.contextLength {
		s.numCtx = h.contextLength // llm/server.go caps num_ctx at the trained length
	}
	if o.NumParallel > 0 {
		s.parallel = uint64(o.NumParallel)
	}
	if h.embedding || slices.Contains(g.singleSequenceArchs(), h.arch) {
		s.parallel = 1
	}
	if o.NumBatch > 0 {
		s.batch = uint64(o.NumBatch)
	}
	s.batch = min(s.batch, s.numCtx)
	switch {
	case eng == EngineLlamaServer && h.embedding && o.NumBatch == 0:
		// Ollama passes -b/-ub min(2048, num_ctx) for embedding models
		// (llm/llama_server.go DefaultEmbeddingNumBatch, v0.34.2).
		s.batch = min(2048, s.numCtx*s.parallel)
	case h.embedding && eng != EngineLlamaServer:
		s.batch = s.numCtx // embeddings process the whole input in one batch
	}

	s.fa = h.flashAttention(eng, g, o.FlashAttention)
	typ := strings.ToLower(o.KVCacheType)
	if _, err := cacheBytesPerElement(eng, typ); err != nil {
		return s, err
	}
	if typ != "" && typ != "f16" && !s.fa {
		typ = "f16" // a quantized cache needs flash attention; Ollama drops it
	}
	bpe, err := cacheBytesPerElement(eng, typ)
	if err != nil {
		return s, err
	}
	s.cacheBPE = bpe
	return s, nil
}
