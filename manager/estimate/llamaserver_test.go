package estimate

import "testing"

// Hand-computed llama-server buffers for llamaModel (2 layers, E=256, H=8,
// Hkv=4, head size 32, FFN 1024, vocab 1000) at num_ctx 2048.
//
// GPU weights: token_embd stays in host memory (the model has an output);
// CUDA pads quantized rows to 512 elements and tensors to 128 bytes:
//
//	output Q8_0 256×1000: 272000 + 272 (256 more elements) → 272384
//	output_norm F32 256: 1024; rope_freqs F32 16: 64 → 128
//	blk.{0,1}.attn_q Q4_0 256×256: 36864 + 144 → 37120 each
//
// = 347776. CPU weights: every tensor padded to 32 bytes = 512000 + 272000
// + 1024 + 2·36864 + 64 = 858816.
//
// KV f16, 2048 cells: 2048·4·(32+32)·2 = 1 MiB per layer.
//
// Compute, T = 512, flash attention on (auto, K = V): masks (4+2)·T·2048 =
// 6291456, residual 2·4·T·256 = 1048576, feed-forward 3·4·T·1024 = 6291456
// (over attention 4·T·(256+256+256) = 1572864): 13631488; the output stage
// 4·T·(256+1000) = 2572288 is smaller. CPU adds the looked-up embeddings
// 4·T·256 = 524288.
func TestLlamaServerBuffers(t *testing.T) {
	const (
		gpuWeights = 347776
		cpuWeights = 858816
		kv         = 2 * mib
		graph      = 13631488
		output     = 4 * 1000
	)
	noFA := Options{NumCtx: 2048, Device: GPU, Generation: LlamaServer, FlashAttention: FlashAttentionOff}
	tests := []struct {
		name string
		m    Model
		o    Options
		want Breakdown
	}{
		{"gpu", llamaModel("llama"), Options{NumCtx: 2048, Device: GPU, Generation: LlamaServer},
			Breakdown{Weights: gpuWeights, KVCache: kv, Graph: graph, Output: output, Overhead: DefaultGPUOverhead,
				Total: gpuWeights + kv + graph + DefaultGPUOverhead, Engine: EngineLlamaServer, NumCtx: 2048}},
		{"cpu counts the host buffers", llamaModel("llama"), Options{NumCtx: 2048, Device: CPU, Generation: LlamaServer},
			Breakdown{Weights: cpuWeights, KVCache: kv, Graph: graph + 524288, Output: output,
				Total: cpuWeights + kv + graph + 524288 + output, Engine: EngineLlamaServer, NumCtx: 2048}},
		// Without flash attention the f32 scores over every cell win:
		// masks 4·T·2048 + residual + 4·T·(768 + 2048·8) = 4194304 + 1048576 + 35127296.
		{"gpu flash attention off", llamaModel("llama"), noFA,
			Breakdown{Weights: gpuWeights, KVCache: kv, Graph: 40370176, Output: output, Overhead: DefaultGPUOverhead,
				Total: gpuWeights + kv + 40370176 + DefaultGPUOverhead, Engine: EngineLlamaServer, NumCtx: 2048}},
		// q8_0 blocks: 34 bytes per 32 elements.
		{"q8_0 cache", llamaModel("llama"), Options{NumCtx: 2048, Device: GPU, Generation: LlamaServer, KVCacheType: "q8_0"},
			Breakdown{Weights: gpuWeights, KVCache: kv * 34 / 32 / 2, Graph: graph, Output: output, Overhead: DefaultGPUOverhead,
				Total: gpuWeights + kv*34/32/2 + graph + DefaultGPUOverhead, Engine: EngineLlamaServer, NumCtx: 2048}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Estimate(tt.m, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// llama.cpp's sliding-window cache is the window plus one batch, padded to
// 256, for every layer but the global ones; a tied model's embeddings are
// duplicated on the GPU as its output.
func TestLlamaServerKV(t *testing.T) {
	gptoss := gemma3Model()
	gptoss.Arch = "gptoss"
	gptoss.KV = kvOf("gptoss", "block_count", 4, "embedding_length", 256, "attention.head_count", 4,
		"attention.head_count_kv", 1, "attention.key_length", 64, "attention.value_length", 64,
		"attention.sliding_window", 128, "context_length", 131072, "feed_forward_length", 1024)
	phi3 := llamaModel("phi3")
	phi3.KV["phi3.attention.sliding_window"] = float64(2048)
	perToken := uint64(1 * (64 + 64) * 2)
	tests := []struct {
		name   string
		m      Model
		numCtx int
		want   uint64
	}{
		// gemma3: layers 0–4 slide (512 + 512 → 1024 cells), layer 5 global.
		{"gemma3", gemma3Model(), 8192, 5*1024*perToken + 8192*perToken},
		// A window larger than the context changes nothing.
		{"gemma3 short context", gemma3Model(), 768, 6 * 768 * perToken},
		// gpt-oss: even layers slide over 128 + 512 → 768 cells (Ollama's own
		// engine kept 4096).
		{"gptoss", gptoss, 32768, 2*768*perToken + 2*32768*perToken},
		// Phi-3's sliding_window is ignored by llama.cpp: full size.
		{"phi3", phi3, 8192, 2 * 8192 * 4 * 64 * 2},
		// Odd context lengths are padded to 256 cells.
		{"padded", llamaModel("llama"), 1000, 2 * 1024 * 4 * 64 * 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Estimate(tt.m, Options{NumCtx: tt.numCtx, Device: GPU, Generation: LlamaServer})
			if err != nil {
				t.Fatal(err)
			}
			if got.KVCache != tt.want {
				t.Errorf("KV %d, want %d", got.KVCache, tt.want)
			}
		})
	}

	// Tied: token_embd F32 256×1000 once on the GPU as the output.
	tied, err := Estimate(gemma3Model(), Options{NumCtx: 2048, Device: GPU, Generation: LlamaServer})
	if err != nil {
		t.Fatal(err)
	}
	// 1024000 + output_norm 1024 + attn_q_norm 256 + odd 12 → 128 each.
	if want := uint64(1024000 + 1024 + 256 + 128); tied.Weights != want {
		t.Errorf("tied weights %d, want %d", tied.Weights, want)
	}
}

// Hybrid models keep a recurrent state per layer without KV heads.
func TestLlamaServerRecurrent(t *testing.T) {
	m := llamaModel("nemotron_h")
	m.KV["nemotron_h.block_count"] = float64(4)
	m.KV["nemotron_h.attention.head_count_kv"] = []any{float64(0), float64(4), float64(0), float64(0)}
	m.KV["nemotron_h.ssm.conv_kernel"] = float64(4)
	m.KV["nemotron_h.ssm.inner_size"] = float64(512)
	m.KV["nemotron_h.ssm.state_size"] = float64(16)
	m.KV["nemotron_h.ssm.group_count"] = float64(2)
	got, err := Estimate(m, Options{NumCtx: 2048, Device: GPU, Generation: LlamaServer})
	if err != nil {
		t.Fatal(err)
	}
	// per layer: conv 3·(512 + 2·2·16) = 1728, state 16·512 = 8192; f32; 3 layers.
	if want := uint64(4 * (1728 + 8192) * 3); got.Recurrent != want {
		t.Errorf("recurrent %d, want %d", got.Recurrent, want)
	}
	if want := uint64(1 * mib); got.KVCache != want { // one attention layer
		t.Errorf("KV %d, want %d", got.KVCache, want)
	}
	if got.Total != got.Weights+got.KVCache+got.Graph+got.Recurrent+got.Overhead {
		t.Errorf("total %d leaves out a part: %+v", got.Total, got)
	}
}

func TestFitLlamaServer(t *testing.T) {
	m := llamaModel("llama")
	o := Options{NumCtx: 2048}
	full, err := Estimate(m, Options{NumCtx: 2048, Device: GPU, Generation: LlamaServer})
	if err != nil {
		t.Fatal(err)
	}
	need := full.Total - full.Overhead
	// Per block: attn_q 37120 + 1 MiB KV; output layer: 347776 − 2·37120.
	block := uint64(37120 + mib)
	output := uint64(347776 - 2*37120)
	tests := []struct {
		name       string
		free       uint64
		target     uint64
		wantLayers int
		wantVRAM   uint64
	}{
		{"everything fits", need + 1024*mib, 1024 * mib, 3, need},
		{"exactly", need, 0, 3, need},
		{"one block short", need - 1, 0, 2, full.Graph + output + block},
		{"output only", full.Graph + output + block - 1, 0, 1, full.Graph + output},
		{"compute buffer only", full.Graph + 1, 0, 0, full.Graph},
		{"nothing", 100 * mib, 200 * mib, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := FitLlamaServer(m, o, tt.free, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if p.GPULayers != tt.wantLayers || p.VRAM != tt.wantVRAM || p.Layers != 3 {
				t.Errorf("placement %+v, want %d of 3 layers, VRAM %d", p, tt.wantLayers, tt.wantVRAM)
			}
			if p.Full() != (tt.wantLayers == 3) {
				t.Errorf("Full() = %v", p.Full())
			}
		})
	}
}
