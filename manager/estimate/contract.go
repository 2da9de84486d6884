package estimate

// Device says where the model will live, which changes what is allocated.
type Device int

const (
	// GPU: the whole model offloaded to one GPU (the case we manage).
	GPU Device = iota
	// CPU: no GPU; Ollama allocates no compute graph on the GPU side.
	CPU
)

// Options are the load settings that change the footprint.
type Options struct {
	NumCtx      int    // context length per sequence; 0 means 4096
	NumParallel int    // sequences; 0 means 1
	NumBatch    int    // 0 means 512
	KVCacheType string // "f16" (default), "q8_0", "q4_0"
	Device      Device
	// FlashAttention mirrors OLLAMA_FLASH_ATTENTION: unset lets Ollama pick
	// per architecture, and a quantized KV cache needs it on.
	FlashAttention FlashAttention
	// GPUOverhead replaces DefaultGPUOverhead (the CUDA context and pools the
	// driver holds beyond size_vram), e.g. with a value measured via NVML.
	GPUOverhead uint64
	// Devices is how many GPUs the model is spread over (0 means 1): each
	// holds its own driver context, so the overhead counts once per GPU.
	Devices int
	// Generation is the server's accounting: ParseGeneration of its
	// /api/version. The zero value is v0.17's.
	Generation Generation
}

// FlashAttention is the OLLAMA_FLASH_ATTENTION setting.
type FlashAttention int

const (
	FlashAttentionUnset FlashAttention = iota
	FlashAttentionOn
	FlashAttentionOff
)

// Breakdown is an estimate split into its parts, in bytes.
type Breakdown struct {
	Weights   uint64 `json:"weights"`
	Projector uint64 `json:"projector"`
	KVCache   uint64 `json:"kv_cache"`
	Graph     uint64 `json:"graph"`
	// Output and Recurrent are llama-server's output (logits) and
	// recurrent-state buffers (v0.30+; zero for the older engines).
	Output    uint64 `json:"output,omitempty"`
	Recurrent uint64 `json:"recurrent,omitempty"`
	Overhead  uint64 `json:"overhead"`
	// Total is what the manager budgets for: the sum of the parts.
	Total uint64 `json:"total"`
	// Engine is which Ollama engine will run it ("ollama", "llama.cpp" or,
	// from v0.30, "llama-server"), since each accounts memory differently.
	Engine string `json:"engine"`
	NumCtx int    `json:"num_ctx"`
}
