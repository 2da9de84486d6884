// Package library lists well-known models of Ollama's library that the
// window offers on a first run, with their download size, what each is
// for, and the shape of its weights, so that the project's estimator says
// what each needs on this card before a byte is downloaded.
package library

import (
	"fmt"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// Model is one model of Ollama's library, at its default tag's
// quantization (Q4_K_M for the language models).
type Model struct {
	Name string
	// For is what it is good at: "chat", "code" or "embedding".
	For string
	// DownloadBytes is its size as ollama.com lists it.
	DownloadBytes uint64
	// spec is the shape of its weights (layers, widths, heads, vocabulary,
	// trained context) as its GGUF file carries them.
	spec ggufgen.Spec
}

const (
	mb = 1_000_000
	gb = 1_000_000_000
)

// The shapes: Qwen2.5 and Qwen2.5-Coder (qwen2), Llama 3.1 and 3.2,
// Mistral 7B v0.3 (llama) and nomic-embed-text v1.5 (nomic-bert), from
// their released configs.
var (
	qwen05   = ggufgen.Spec{Arch: "qwen2", Layers: 24, Embd: 896, Heads: 14, KVHeads: 2, FFN: 4864, Vocab: 151936, ContextLength: 32768, TiedEmbeddings: true}
	qwen15   = ggufgen.Spec{Arch: "qwen2", Layers: 28, Embd: 1536, Heads: 12, KVHeads: 2, FFN: 8960, Vocab: 151936, ContextLength: 32768, TiedEmbeddings: true}
	qwen7    = ggufgen.Spec{Arch: "qwen2", Layers: 28, Embd: 3584, Heads: 28, KVHeads: 4, FFN: 18944, Vocab: 152064, ContextLength: 32768}
	qwen14   = ggufgen.Spec{Arch: "qwen2", Layers: 48, Embd: 5120, Heads: 40, KVHeads: 8, FFN: 13824, Vocab: 152064, ContextLength: 32768}
	llama1   = ggufgen.Spec{Arch: "llama", Layers: 16, Embd: 2048, Heads: 32, KVHeads: 8, FFN: 8192, Vocab: 128256, ContextLength: 131072, TiedEmbeddings: true}
	llama3   = ggufgen.Spec{Arch: "llama", Layers: 28, Embd: 3072, Heads: 24, KVHeads: 8, FFN: 8192, Vocab: 128256, ContextLength: 131072, TiedEmbeddings: true}
	llama8   = ggufgen.Spec{Arch: "llama", Layers: 32, Embd: 4096, Heads: 32, KVHeads: 8, FFN: 14336, Vocab: 128256, ContextLength: 131072}
	mistral7 = ggufgen.Spec{Arch: "llama", Layers: 32, Embd: 4096, Heads: 32, KVHeads: 8, FFN: 14336, Vocab: 32768, ContextLength: 32768}
	nomic    = ggufgen.Spec{Arch: "nomic-bert", Layers: 12, Embd: 768, Heads: 12, KVHeads: 12, FFN: 3072, Vocab: 30522, ContextLength: 2048}
)

// Models is the list, smallest first within each use.
func Models() []Model {
	return []Model{
		{"qwen2.5:0.5b", "chat", 398 * mb, qwen05},
		{"llama3.2:1b", "chat", 1300 * mb, llama1},
		{"llama3.2:3b", "chat", 2 * gb, llama3},
		{"qwen2.5:7b", "chat", 4700 * mb, qwen7},
		{"llama3.1:8b", "chat", 4900 * mb, llama8},
		{"mistral:7b", "chat", 4400 * mb, mistral7},
		{"qwen2.5-coder:1.5b", "code", 986 * mb, qwen15},
		{"qwen2.5-coder:7b", "code", 4700 * mb, qwen7},
		{"qwen2.5-coder:14b", "code", 9 * gb, qwen14},
		{"nomic-embed-text", "embedding", 274 * mb, nomic},
	}
}

// Need is what the model takes on a GPU at numCtx tokens (capped at its
// trained context, as Ollama caps it), by the estimator with the
// accounting of server generation gen. The shape is written with Q4_0
// (F16 for the embedding model) weights; the released files mix denser
// types (Q6_K in Q4_K_M), so the weights are scaled to the download size.
func (m Model) Need(numCtx int, gen estimate.Generation) (uint64, error) {
	s := m.spec
	s.WeightType = "Q4_0"
	if m.For == "embedding" {
		s.WeightType = "F16"
	}
	meta, err := s.Model()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.Name, err)
	}
	b, err := estimate.Estimate(meta, estimate.Options{NumCtx: min(numCtx, s.ContextLength), NumParallel: 1,
		Device: estimate.GPU, Generation: gen})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.Name, err)
	}
	tensors, err := s.TensorBytes()
	if err != nil || tensors == 0 {
		return b.Total, nil
	}
	scale := float64(m.DownloadBytes) / float64(tensors)
	return b.Total - b.Weights + uint64(float64(b.Weights)*scale), nil
}
