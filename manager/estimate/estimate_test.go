package estimate

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const mib = 1 << 20

// kvOf builds /api/show-style metadata: numbers as float64, as JSON gives.
func kvOf(arch string, pairs ...any) map[string]any {
	kv := map[string]any{"general.architecture": arch}
	for i := 0; i < len(pairs); i += 2 {
		k := pairs[i].(string)
		if !strings.HasPrefix(k, "tokenizer.") && !strings.HasPrefix(k, "general.") {
			k = arch + "." + k
		}
		v := pairs[i+1]
		if n, ok := v.(int); ok {
			v = float64(n)
		}
		kv[k] = v
	}
	return kv
}

// llamaModel: 2 layers, E=256, 8 heads, 4 KV heads, no key_length (so
// 256/8 = 32), vocab 1000 from token_embd.
//
//	token_embd F16 256×1000 = 512000 (not counted by the llama.cpp estimate)
//	output     Q8_0 256×1000 = 256000·34/32 = 272000
//	output_norm F32 256 = 1024
//	blk.{0,1}.attn_q Q4_0 256×256 = 65536·18/32 = 36864 each
//	rope_freqs F32 16 = 64 (not counted)
//
// weights = 1024 + 272000 + 2·36864 = 346752
// KV f16 at 2048: 2048 cells · 4 heads · (32+32) · 2 B = 1 MiB per layer.
func llamaModel(arch string) Model {
	return Model{
		Arch: arch,
		KV: kvOf(arch, "block_count", 2, "embedding_length", 256, "attention.head_count", 8,
			"attention.head_count_kv", 4, "context_length", 131072, "feed_forward_length", 1024),
		Tensors: []Tensor{
			{"token_embd.weight", "F16", []uint64{256, 1000}},
			{"output.weight", "Q8_0", []uint64{256, 1000}},
			{"output_norm.weight", "F32", []uint64{256}},
			{"blk.0.attn_q.weight", "Q4_0", []uint64{256, 256}},
			{"blk.1.attn_q.weight", "Q4_0", []uint64{256, 256}},
			{"rope_freqs.weight", "F32", []uint64{16}},
		},
	}
}

// gemma3Model: Ollama engine, 6 layers (5 sliding, 1 global), 4 heads,
// 1 KV head, key/value_length 64, window 512, vocab 1000, tied.
//
//	token_embd F32 256×1000 = 1024000, counted twice (input and output)
//	output_norm F32 256 = 1024; blk.0.attn_q_norm F32 64 = 256
//	blk.0.odd F32 3 = 12 → padded to 32
//
// weights = 2048000 + 1024 + 256 + 32 = 2049312
func gemma3Model() Model {
	return Model{
		Arch: "gemma3",
		KV: kvOf("gemma3", "block_count", 6, "embedding_length", 256, "attention.head_count", 4,
			"attention.head_count_kv", 1, "attention.key_length", 64, "attention.value_length", 64,
			"attention.sliding_window", 512, "context_length", 32768, "feed_forward_length", 1024),
		Tensors: []Tensor{
			{"token_embd.weight", "F32", []uint64{256, 1000}},
			{"output_norm.weight", "F32", []uint64{256}},
			{"blk.0.attn_q_norm.weight", "F32", []uint64{64}},
			{"blk.0.odd.weight", "F32", []uint64{3}},
		},
	}
}

func bertModel() Model {
	return Model{
		Arch: "bert",
		KV: kvOf("bert", "block_count", 2, "embedding_length", 256, "attention.head_count", 4,
			"context_length", 512, "feed_forward_length", 1024, "pooling_type", 1),
		Tensors: []Tensor{
			{"token_embd.weight", "F16", []uint64{256, 1000}},  // 512000, twice
			{"blk.0.attn_q.weight", "F16", []uint64{256, 256}}, // 131072
		},
	}
}

func TestEstimate(t *testing.T) {
	perLayer := llamaModel("llama")
	perLayer.KV["llama.block_count"] = float64(3)
	perLayer.KV["llama.attention.head_count_kv"] = []any{float64(4), float64(0), float64(4)}

	keyLen := llamaModel("qwen2")
	keyLen.KV["qwen2.attention.key_length"] = float64(128)
	keyLen.KV["qwen2.attention.value_length"] = float64(64)

	mixtral := llamaModel("llama")
	mixtral.KV["llama.expert_count"] = float64(8)
	mixtral.KV["llama.expert_used_count"] = float64(2)
	mixtral.Tensors = append(mixtral.Tensors, Tensor{"blk.0.ffn_gate_exps.weight", "Q4_0", []uint64{256, 1024, 8}}) // 2097152·18/32 = 1179648

	withVocab := llamaModel("llama")
	tokens := make([]any, 2000)
	withVocab.KV["tokenizer.ggml.tokens"] = tokens

	const llamaWeights, llamaKV = 346752, 2 * mib
	const gpuOverhead = DefaultGPUOverhead
	// llama full-offload graph at C=2048, b=512, E=256, H=8, V=1000:
	// max(4·512·(1+4·256+2048·9), 4·512·(256+1000)) = 2048·19457
	const llamaGraph = 2048 * 19457

	cases := []struct {
		name string
		m    Model
		o    Options
		want Breakdown
	}{
		{"llama cpu", llamaModel("llama"), Options{NumCtx: 2048, Device: CPU},
			Breakdown{Weights: llamaWeights, KVCache: llamaKV, Total: llamaWeights + llamaKV, Engine: EngineLlamaCpp, NumCtx: 2048}},
		{"llama gpu", llamaModel("llama"), Options{NumCtx: 2048, Device: GPU},
			Breakdown{Weights: llamaWeights, KVCache: llamaKV, Graph: llamaGraph, Overhead: gpuOverhead,
				Total: llamaWeights + llamaKV + llamaGraph + gpuOverhead, Engine: EngineLlamaCpp, NumCtx: 2048}},
		{"llama gpu measured overhead", llamaModel("llama"), Options{NumCtx: 2048, Device: GPU, GPUOverhead: 100 * mib},
			Breakdown{Weights: llamaWeights, KVCache: llamaKV, Graph: llamaGraph, Overhead: 100 * mib,
				Total: llamaWeights + llamaKV + llamaGraph + 100*mib, Engine: EngineLlamaCpp, NumCtx: 2048}},
		{"llama vocab from tokens", withVocab, Options{NumCtx: 2048, Device: GPU},
			// the vocab term 2048·(256+2000) still loses to the attention term
			Breakdown{Weights: llamaWeights, KVCache: llamaKV, Graph: llamaGraph, Overhead: gpuOverhead,
				Total: llamaWeights + llamaKV + llamaGraph + gpuOverhead, Engine: EngineLlamaCpp, NumCtx: 2048}},
		{"llama parallel 2", llamaModel("llama"), Options{NumCtx: 2048, NumParallel: 2, Device: CPU},
			Breakdown{Weights: llamaWeights, KVCache: 2 * llamaKV, Total: llamaWeights + 2*llamaKV, Engine: EngineLlamaCpp, NumCtx: 2048}},
		{"llama q8_0 without flash attention stays f16", llamaModel("llama"), Options{NumCtx: 2048, KVCacheType: "q8_0", Device: CPU},
			Breakdown{Weights: llamaWeights, KVCache: llamaKV, Total: llamaWeights + llamaKV, Engine: EngineLlamaCpp, NumCtx: 2048}},
		{"llama q8_0 with flash attention", llamaModel("llama"), Options{NumCtx: 2048, KVCacheType: "q8_0", FlashAttention: FlashAttentionOn, Device: CPU},
			Breakdown{Weights: llamaWeights, KVCache: llamaKV / 2, Total: llamaWeights + llamaKV/2, Engine: EngineLlamaCpp, NumCtx: 2048}},
		{"llama per-layer kv heads", perLayer, Options{NumCtx: 2048, Device: CPU},
			// layer 1 has no KV heads: no cache; 3 layers but only 2 attn_q tensors
			Breakdown{Weights: llamaWeights, KVCache: 2 * mib, Total: llamaWeights + 2*mib, Engine: EngineLlamaCpp, NumCtx: 2048}},
		{"mixtral", mixtral, Options{NumCtx: 2048, Device: GPU},
			Breakdown{Weights: llamaWeights + 1179648, KVCache: llamaKV, Graph: llamaGraph, Overhead: gpuOverhead,
				Total: llamaWeights + 1179648 + llamaKV + llamaGraph + gpuOverhead, Engine: EngineLlamaCpp, NumCtx: 2048}},
		{"qwen2 gpu", llamaModel("qwen2"), Options{NumCtx: 2048, Device: GPU},
			// max(4b(E+V), 4b(1+2E+C+CH)) = 2048·(1+512+2048+16384)
			Breakdown{Weights: llamaWeights, KVCache: llamaKV, Graph: 2048 * 18945, Overhead: gpuOverhead,
				Total: llamaWeights + llamaKV + 2048*18945 + gpuOverhead, Engine: EngineLlamaCpp, NumCtx: 2048}},
		{"qwen2 explicit key/value length", keyLen, Options{NumCtx: 2048, Device: CPU},
			// 2048 · 4 · (128+64) · 2 B · 2 layers
			Breakdown{Weights: llamaWeights, KVCache: 2048 * 4 * 192 * 2 * 2, Total: llamaWeights + 2048*4*192*2*2, Engine: EngineLlamaCpp, NumCtx: 2048}},
		{"phi3 fallback graph", llamaModel("phi3"), Options{NumCtx: 2048, Device: GPU},
			// gqa 8/4 = 2, · KV 2 MiB / 6
			Breakdown{Weights: llamaWeights, KVCache: llamaKV, Graph: 2 * llamaKV / 6, Overhead: gpuOverhead,
				Total: llamaWeights + llamaKV + 2*llamaKV/6 + gpuOverhead, Engine: EngineLlamaCpp, NumCtx: 2048}},
		{"num_ctx capped at context_length", llamaModel("llama"), Options{NumCtx: 262144, Device: CPU},
			Breakdown{Weights: llamaWeights, KVCache: 64 * llamaKV, Total: llamaWeights + 64*llamaKV, Engine: EngineLlamaCpp, NumCtx: 131072}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Estimate(tc.m, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// The Ollama-engine graph is an approximation; these cases check the parts
// that are exact (weights, KV) and that the graph is counted on both devices.
func TestEstimateOllamaEngine(t *testing.T) {
	qwen3moe := Model{
		Arch: "qwen3moe",
		KV: kvOf("qwen3moe", "block_count", 2, "embedding_length", 256, "attention.head_count", 8,
			"attention.head_count_kv", 2, "attention.key_length", 128, "attention.value_length", 128,
			"expert_count", 8, "expert_used_count", 2, "expert_feed_forward_length", 256, "context_length", 40960),
		Tensors: []Tensor{{"token_embd.weight", "Q8_0", []uint64{256, 1000}}, {"output.weight", "Q8_0", []uint64{256, 1000}}},
	}
	cases := []struct {
		name        string
		m           Model
		o           Options
		weights, kv uint64
		numCtx      int
	}{
		// 5 sliding layers: roundUp(512+512, 256) = 1024 cells; 1 global: 8192.
		// per cell 1 head · 128 · 2 B = 256
		{"gemma3 swa", gemma3Model(), Options{NumCtx: 8192, Device: CPU}, 2049312, 5*1024*256 + 8192*256, 8192},
		// flash attention is on by default for gemma3, so q8_0 holds: 34/32 B
		{"gemma3 q8_0", gemma3Model(), Options{NumCtx: 8192, KVCacheType: "q8_0", Device: CPU}, 2049312, 5*1024*136 + 8192*136, 8192},
		// parallel 2: window 513, roundUp(2·513+512, 256) = 1792; global 16384
		{"gemma3 parallel 2", gemma3Model(), Options{NumCtx: 8192, NumParallel: 2, Device: CPU}, 2049312, 5*1792*256 + 16384*256, 8192},
		// window ≥ num_ctx: every layer full size, roundUp(300, 256) = 512
		{"gemma3 small ctx", gemma3Model(), Options{NumCtx: 300, Device: CPU}, 2049312, 6 * 512 * 256, 300},
		// GPU buffers align to 128: the 12-byte tensor takes 128, the 256-byte one stays
		{"gemma3 gpu alignment", gemma3Model(), Options{NumCtx: 8192, Device: GPU}, 2048000 + 1024 + 256 + 128, 5*1024*256 + 8192*256, 8192},
		// no cache; token_embd twice; num_ctx capped at 512
		{"bert", bertModel(), Options{NumCtx: 8192, NumParallel: 4, Device: CPU}, 2*512000 + 131072, 0, 512},
		// 2 layers · 8192 cells · 2 heads · 256 · 34/32 B (flash attention default on)
		{"qwen3moe q8_0", qwen3moe, Options{NumCtx: 8192, KVCacheType: "q8_0", Device: CPU}, 2 * 272000, 2 * 8192 * 2 * 256 * 34 / 32, 8192},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Estimate(tc.m, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if got.Engine != EngineOllama || got.Weights != tc.weights || got.KVCache != tc.kv || got.NumCtx != tc.numCtx {
				t.Errorf("got %+v, want engine ollama, weights %d, kv %d, num_ctx %d", got, tc.weights, tc.kv, tc.numCtx)
			}
			if got.Graph == 0 || got.Total < got.Weights+got.KVCache+got.Graph {
				t.Errorf("graph %d, total %d: the Ollama engine always allocates a graph", got.Graph, got.Total)
			}
		})
	}
}

func TestGraphOllama(t *testing.T) {
	dense := hparams{arch: "x", layers: 2, embd: 256, heads: []uint64{8, 8}, headsKV: []uint64{2, 2},
		keyLen: 32, valueLen: 32, vocab: 1000, ffn: 1024}
	moe := dense
	moe.experts, moe.used = 8, 2
	// A single-layer model reads its mask in one layer only.
	one := dense
	one.layers, one.heads, one.headsKV = 1, []uint64{8}, []uint64{2}
	// gemma3 shapes: layer 5 (and 11) global, the rest sliding.
	swa6 := dense
	swa6.layers, swa6.heads, swa6.headsKV = 6, []uint64{8, 8, 8, 8, 8, 8}, []uint64{2, 2, 2, 2, 2, 2}
	swa12 := swa6
	swa12.layers, swa12.heads, swa12.headsKV = 12, slices.Repeat([]uint64{8}, 12), slices.Repeat([]uint64{2}, 12)
	slide := func(n int) []bool {
		out := make([]bool, n)
		for i := range out {
			out[i] = (i+1)%6 != 0
		}
		return out
	}
	const (
		hidden = 4 * 2 * 512 * 256  // hidden + residual
		qkv    = 4 * 512 * 384      // q, k, v
		ffn    = 4 * 4 * 512 * 1024 // gate, up, activation, product
		scores = 4 * 512 * 2048 * 8 // f32 scores without flash attention
		f32m   = 4 * 512 * 2048     // f32 full mask
		f16m   = 2 * 512 * 2048     // f16 full mask
		f16w   = 2 * 512 * 1024     // f16 window mask (1024 cells)
		router = 4 * 512 * 8        // MoE router logits
	)
	tests := []struct {
		name    string
		h       hparams
		fa      bool
		sliding []bool
		want    uint64
	}{
		{"flash off: the scores beat the ffn", dense, false, nil, hidden + f32m + qkv + scores},
		{"flash on: f16 mask, the ffn wins", dense, true, nil, hidden + f16m + ffn},
		{"one layer: the mask lives with attention only", one, true, nil, hidden + ffn},
		{"moe: per used expert, plus the router", moe, true, nil, hidden + f16m + 2*ffn + router},
		// The window mask spans layers 0–4; the full mask is read by layer 5
		// alone, so it only sits next to that layer's attention.
		{"sliding, one global layer", swa6, true, slide(6), hidden + f16w + max(qkv+f16m, ffn)},
		// Layers 5 and 11 read the full mask: it is alive across the
		// feed-forward of layers 6–10 (real gemma3 has 4–10 global layers).
		{"sliding, two global layers", swa12, true, slide(12), hidden + f16w + f16m + ffn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := kvSetup{numCtx: 2048, parallel: 1, batch: 512, fa: tt.fa}
			if got := graphOllama(tt.h, s, 2048, 1024, tt.sliding); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestEstimateErrors(t *testing.T) {
	noBlocks := llamaModel("llama")
	delete(noBlocks.KV, "llama.block_count")
	noHeads := llamaModel("llama")
	delete(noHeads.KV, "llama.attention.head_count")
	noTensors := llamaModel("llama")
	noTensors.Tensors = nil
	noArch := llamaModel("")
	cases := []struct {
		name string
		m    Model
		o    Options
		want string
	}{
		{"block_count", noBlocks, Options{}, "llama.block_count"},
		{"head_count", noHeads, Options{}, "llama.attention.head_count"},
		{"tensors", noTensors, Options{}, "tensors"},
		{"arch", noArch, Options{}, "general.architecture"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Estimate(tc.m, tc.o)
			if !errors.Is(err, ErrMissingKey) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrMissingKey naming %s", err, tc.want)
			}
		})
	}
	if _, err := Estimate(llamaModel("llama"), Options{KVCacheType: "q5_1"}); err == nil || !strings.Contains(err.Error(), "q5_1") {
		t.Errorf("bad cache type: error %v", err)
	}
}
