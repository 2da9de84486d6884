package ggufgen

import (
	"fmt"
	"maps"
	"slices"
)

// presets are released models' shapes (layers, widths, heads, vocabulary,
// tied embeddings) as their GGUF files carry them, so a generated file is
// as large as the real one at the same weight type.
func presets() map[string]Spec {
	return map[string]Spec{
		// Qwen2.5-0.5B: 0.49B parameters, tied embeddings.
		"qwen2-0.5b": {Arch: "qwen2", Layers: 24, Embd: 896, Heads: 14, KVHeads: 2, FFN: 4864, Vocab: 151936,
			ContextLength: 32768, TiedEmbeddings: true},
		// Llama-3.2-1B: 1.24B parameters, tied embeddings.
		"llama-1b": {Arch: "llama", Layers: 16, Embd: 2048, Heads: 32, KVHeads: 8, FFN: 8192, Vocab: 128256,
			ContextLength: 131072, TiedEmbeddings: true},
		// Llama-3.2-3B: 3.21B parameters, tied embeddings.
		"llama-3b": {Arch: "llama", Layers: 28, Embd: 3072, Heads: 24, KVHeads: 8, FFN: 8192, Vocab: 128256,
			ContextLength: 131072, TiedEmbeddings: true},
		// Mistral-7B-v0.3 (vocabulary 32768): 7.25B parameters.
		"mistral-7b": {Arch: "llama", Layers: 32, Embd: 4096, Heads: 32, KVHeads: 8, FFN: 14336, Vocab: 32768,
			ContextLength: 32768},
		// Qwen2.5-7B: 7.6B parameters.
		"qwen2-7b": {Arch: "qwen2", Layers: 28, Embd: 3584, Heads: 28, KVHeads: 4, FFN: 18944, Vocab: 152064,
			ContextLength: 32768},
	}
}

// PresetNames lists the shapes Preset knows, sorted.
func PresetNames() []string { return slices.Sorted(maps.Keys(presets())) }

// Preset returns the shape of a released model with weights of type
// weightType ("Q4_0", "Q8_0", "F16", "F32"), e.g. Preset("llama-1b",
// "Q8_0") for a 1.3 GB file. The weights are synthetic; the sizes, and so
// the time to read and load the file, are the real model's.
func Preset(name, weightType string) (Spec, error) {
	s, ok := presets()[name]
	if !ok {
		return Spec{}, fmt.Errorf("ggufgen: no preset %q (known: %v)", name, PresetNames())
	}
	s.WeightType = weightType
	if err := s.Validate(); err != nil {
		return Spec{}, fmt.Errorf("ggufgen: preset %s: %w", name, err)
	}
	return s, nil
}

// TensorBytes is the size of every tensor's data: the file's size less its
// header (metadata, vocabulary and tensor index) and alignment padding.
func (s Spec) TensorBytes() (uint64, error) {
	specs, err := layout(s)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, ts := range specs {
		n += ts.tensor().Size()
	}
	return n, nil
}
