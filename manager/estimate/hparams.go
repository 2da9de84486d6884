package estimate

import (
	"fmt"
	"slices"
)

// hparams is what the estimate needs from the metadata, with Ollama's
// fallbacks applied.
type hparams struct {
	arch             string
	layers           int
	embd             uint64
	heads, headsKV   []uint64 // per layer
	keyLen, valueLen uint64
	contextLength    uint64 // trained; 0 = unknown
	vocab            uint64
	ffn              uint64
	experts, used    uint64
	slidingWindow    uint64
	swaPattern       []bool
	embedding        bool // has pooling_type: an embedding model
}

func readHparams(m Model) (hparams, error) {
	arch := m.Arch
	if arch == "" {
		if s, ok := m.KV["general.architecture"].(string); ok {
			arch = s
		}
	}
	if arch == "" {
		return hparams{}, fmt.Errorf("%w: general.architecture", ErrMissingKey)
	}
	md := meta{arch: arch, kv: m.KV}
	h := hparams{arch: arch}

	blocks, err := md.mustUint("block_count")
	if err != nil {
		return h, err
	}
	h.layers = int(blocks)
	if h.embd, err = md.mustUint("embedding_length"); err != nil {
		return h, err
	}
	heads, ok, err := md.perLayer("attention.head_count", h.layers)
	if err != nil {
		return h, err
	}
	if !ok {
		return h, fmt.Errorf("%w: %s", ErrMissingKey, md.key("attention.head_count"))
	}
	h.heads = heads
	// Converters always write head_count_kv; if absent, llama.cpp treats the
	// model as multi-head (one KV head per head), which is what it allocates.
	if h.headsKV, ok, err = md.perLayer("attention.head_count_kv", h.layers); err != nil {
		return h, err
	} else if !ok {
		h.headsKV = slices.Clone(heads)
	}

	// Missing key/value_length: Ollama uses embedding_length / min(heads).
	minHeads, _ := minMax(heads)
	fallback := uint64(0)
	if minHeads > 0 {
		fallback = h.embd / minHeads
	}
	h.keyLen, h.valueLen = fallback, fallback
	if v, ok := md.uint("attention.key_length"); ok {
		h.keyLen = v
	}
	if v, ok := md.uint("attention.value_length"); ok {
		h.valueLen = v
	}

	h.contextLength, _ = md.uint("context_length")
	h.ffn, _ = md.uint("feed_forward_length")
	if v, ok := md.uint("expert_feed_forward_length"); ok {
		h.ffn = v
	}
	h.experts, _ = md.uint("expert_count")
	h.used, _ = md.uint("expert_used_count")
	h.slidingWindow, _ = md.uint("attention.sliding_window")
	h.swaPattern = md.bools("attention.sliding_window_pattern")
	h.embedding = md.has("pooling_type")

	// Vocabulary: the token list if /api/show was verbose, else the
	// embedding matrix's second dimension.
	if n, ok := arrayLen(m.KV["tokenizer.ggml.tokens"]); ok && n > 0 {
		h.vocab = uint64(n)
	} else if t, ok := findTensor(m.Tensors, "token_embd.weight"); ok && len(t.Shape) > 1 {
		h.vocab = t.Shape[1]
	}
	if h.vocab == 0 {
		return h, fmt.Errorf("%w: tokenizer.ggml.tokens (call /api/show with verbose) or token_embd.weight", ErrMissingKey)
	}
	return h, nil
}

func findTensor(ts []Tensor, name string) (Tensor, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// Engine names, as Breakdown.Engine reports them.
const (
	EngineOllama   = "ollama"
	EngineLlamaCpp = "llama.cpp"
	// EngineLlamaServer is upstream llama-server (Ollama v0.30+).
	EngineLlamaServer = "llama-server"
)

// engine picks the engine; a split projector forces llama.cpp ("split
// vision models aren't supported" by the Ollama engine). From v0.30
// llama-server runs everything.
func engine(m Model, arch string, g Generation) string {
	if g >= LlamaServer {
		return EngineLlamaServer
	}
	if len(m.ProjectorKV) == 0 && len(m.ProjectorTensors) == 0 && slices.Contains(g.ollamaEngineArchs(), arch) {
		return EngineOllama
	}
	return EngineLlamaCpp
}

// supportsFlashAttention mirrors GGML.SupportsFlashAttention.
func (h hparams) supportsFlashAttention(g Generation) bool {
	switch {
	case h.embedding:
		return false
	case slices.Contains([]string{"qwen35", "qwen35moe", "qwen3next"}, h.arch):
		return true
	case slices.Contains(g.noFlashAttention(), h.arch):
		return false
	}
	return h.keyLen != 0 && h.keyLen == h.valueLen
}

// flashAttention says whether attention runs fused, per engine. The
// llama.cpp engine gets "auto" unless the user set it, and Ollama's
// estimate then treats only an explicit "on" as on.
func (h hparams) flashAttention(eng string, g Generation, fa FlashAttention) bool {
	if eng == EngineLlamaServer {
		return h.llamaServerFlashAttention(fa)
	}
	if !h.supportsFlashAttention(g) {
		return false
	}
	switch fa {
	case FlashAttentionOn:
		return true
	case FlashAttentionOff:
		return false
	}
	return eng == EngineOllama && slices.Contains(g.flashAttentionByDefault(), h.arch)
}
