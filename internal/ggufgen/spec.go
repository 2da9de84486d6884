// Package ggufgen writes tiny but real GGUF models, loadable by Ollama, for
// tests and benchmarks. Shapes follow each architecture's real layout so that
// memory accounting (weights, KV cache, compute graph) behaves as it does for
// production models; only the sizes are small. Knobs make them bigger.
package ggufgen

import (
	"errors"
	"fmt"
	"slices"
)

// Spec describes the model to generate.
type Spec struct {
	// Arch is the GGUF architecture: "llama" (with Experts > 0 a Mixtral-style
	// MoE), "qwen2", "gemma3", "gemma2", "phi3", "qwen3moe", "bert",
	// "nomic-bert".
	Arch string
	// Layers is block_count, Embd embedding_length, Heads and KVHeads the
	// attention head counts, FFN feed_forward_length (per expert for MoE),
	// Vocab the number of tokens (at least MinVocab).
	Layers, Embd, Heads, KVHeads, FFN, Vocab int
	// ContextLength is the trained context length (<arch>.context_length);
	// Ollama caps num_ctx at it.
	ContextLength int
	// Experts and ExpertsUsed make a mixture of experts; 0 means dense.
	Experts, ExpertsUsed int
	// WeightType is the ggml type of the big matrices: "F32", "F16", "Q4_0"
	// or "Q8_0". Norms and biases are always F32, as converters write them.
	WeightType string
	// TiedEmbeddings omits output.weight: the output reuses token_embd.
	// gemma2 and gemma3 are always tied, as their real checkpoints are.
	TiedEmbeddings bool
	// SlidingWindow is <arch>.attention.sliding_window for gemma2, gemma3
	// and phi3; 0 picks 512 for the gemmas and omits it for phi3.
	SlidingWindow int
}

// MinVocab is the smallest vocabulary: special tokens, the 256 byte
// tokens and a few pieces.
const MinVocab = 265

var archs = []string{"llama", "qwen2", "gemma3", "gemma2", "phi3", "qwen3moe", "bert", "nomic-bert"}

var weightTypes = []string{"F32", "F16", "Q4_0", "Q8_0"}

// Validate reports the first reason the spec cannot be written.
func (s Spec) Validate() error {
	var errs []error
	if !slices.Contains(archs, s.Arch) {
		errs = append(errs, fmt.Errorf("arch %q not supported (want one of %v)", s.Arch, archs))
	}
	if !slices.Contains(weightTypes, s.WeightType) {
		errs = append(errs, fmt.Errorf("weight type %q not supported (want one of %v)", s.WeightType, weightTypes))
	}
	if s.Layers <= 0 || s.Embd <= 0 || s.Heads <= 0 || s.KVHeads <= 0 || s.FFN <= 0 {
		errs = append(errs, fmt.Errorf("layers, embd, heads, kv heads and ffn must be positive (got %d, %d, %d, %d, %d)",
			s.Layers, s.Embd, s.Heads, s.KVHeads, s.FFN))
	} else {
		if s.Embd%s.Heads != 0 {
			errs = append(errs, fmt.Errorf("embd %d is not a multiple of heads %d", s.Embd, s.Heads))
		}
		if s.Heads%s.KVHeads != 0 {
			errs = append(errs, fmt.Errorf("heads %d is not a multiple of kv heads %d", s.Heads, s.KVHeads))
		}
		// Quantized rows are made of 32-element blocks, and every matrix row
		// is Embd, FFN or a head dimension long.
		if s.Embd%32 != 0 || s.FFN%32 != 0 || (s.Embd/s.Heads)%32 != 0 {
			errs = append(errs, fmt.Errorf("embd %d, ffn %d and head dim %d must be multiples of 32", s.Embd, s.FFN, s.Embd/max(s.Heads, 1)))
		}
	}
	if s.Vocab < MinVocab {
		errs = append(errs, fmt.Errorf("vocab %d below the minimum %d", s.Vocab, MinVocab))
	}
	if s.ContextLength <= 0 {
		errs = append(errs, fmt.Errorf("context length must be positive (got %d)", s.ContextLength))
	}
	if s.Experts < 0 || s.ExpertsUsed < 0 || (s.Experts > 0) != (s.ExpertsUsed > 0) || s.ExpertsUsed > s.Experts {
		errs = append(errs, fmt.Errorf("experts %d / used %d: both zero, or 0 < used <= experts", s.Experts, s.ExpertsUsed))
	}
	switch {
	case s.Arch == "qwen3moe" && s.Experts == 0:
		errs = append(errs, errors.New("qwen3moe needs experts"))
	case s.Experts > 0 && s.Arch != "llama" && s.Arch != "qwen3moe":
		errs = append(errs, fmt.Errorf("experts are only supported for llama and qwen3moe, not %s", s.Arch))
	}
	if s.SlidingWindow < 0 {
		errs = append(errs, fmt.Errorf("sliding window %d is negative", s.SlidingWindow))
	}
	return errors.Join(errs...)
}

func (s Spec) headDim() int { return s.Embd / s.Heads }

func (s Spec) tied() bool {
	return s.TiedEmbeddings || s.Arch == "gemma2" || s.Arch == "gemma3"
}

func (s Spec) slidingWindow() int {
	if s.SlidingWindow == 0 && (s.Arch == "gemma2" || s.Arch == "gemma3") {
		return 512
	}
	return s.SlidingWindow
}

func (s Spec) isEmbedding() bool { return s.Arch == "bert" || s.Arch == "nomic-bert" }
