package ollama

import (
	"strconv"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// ServeSettings is what VRAM Keeper knows when it starts `ollama serve`
// itself.
type ServeSettings struct {
	// Version is the binary's version ("0.34.2", "v0.17.4"; empty when
	// unknown, which is taken as the newest generation).
	Version string
	// CardBytes is the memory of one GPU, BudgetBytes VRAM Keeper's budget
	// on it. 0 for either: no GPU known, no fit target set.
	CardBytes, BudgetBytes uint64
	// MaxLoaded is VRAM Keeper's limit on loaded models (0: not set).
	MaxLoaded int
	// ContextLength is the context VRAM Keeper loads models with (0: not set).
	ContextLength int
	// KVCacheType is the cache type the estimate assumes ("": f16).
	KVCacheType string
}

// Environment variables ServeEnv sets.
const (
	EnvFitTarget     = "LLAMA_ARG_FIT_TARGET"
	EnvMaxLoaded     = "OLLAMA_MAX_LOADED_MODELS"
	EnvNumParallel   = "OLLAMA_NUM_PARALLEL"
	EnvContextLength = "OLLAMA_CONTEXT_LENGTH"
	EnvKVCacheType   = "OLLAMA_KV_CACHE_TYPE"
)

// ServeEnv returns the variables ("KEY=value") to add to the environment of
// an `ollama serve` that VRAM Keeper starts, so Ollama's own decisions agree
// with the budget and the estimates:
//
//   - LLAMA_ARG_FIT_TARGET (v0.30+): the MiB llama.cpp's fit leaves free on
//     each device; the card minus the budget, so a load through Ollama's own
//     port stops where the budget does instead of at llama.cpp's default
//     1024 MiB. (Set here, it also replaces the projector padding Ollama
//     would add for vision models on its own: the budget already leaves the
//     headroom.)
//   - OLLAMA_MAX_LOADED_MODELS: the same limit as ours, so Ollama's
//     scheduler does not keep more models than VRAM Keeper plans for.
//   - OLLAMA_NUM_PARALLEL=1: the KV cache the estimate sizes (num_ctx × 1).
//   - OLLAMA_CONTEXT_LENGTH: our context length; with it set Ollama's
//     num_ctx is never "automatic", so it does not shrink the context and
//     evict every other model after an out-of-memory load (server/routes.go
//     usesAutomaticNumCtx, v0.34.2).
//   - OLLAMA_KV_CACHE_TYPE, only when the estimate assumes a quantized cache.
//
// OLLAMA_KEEP_ALIVE is left alone: VRAM Keeper sends keep_alive -1 with its
// own loads, and models other clients load keep Ollama's default, which
// returns their memory when they go idle.
func ServeEnv(s ServeSettings) []string {
	var env []string
	if s.CardBytes > 0 && s.BudgetBytes > 0 && estimate.ParseGeneration(s.Version) >= estimate.LlamaServer {
		headroom := uint64(0)
		if s.CardBytes > s.BudgetBytes {
			headroom = s.CardBytes - s.BudgetBytes
		}
		// Rounded up: llama.cpp takes whole MiB and must not leave less.
		env = append(env, EnvFitTarget+"="+strconv.FormatUint((headroom+(1<<20)-1)>>20, 10))
	}
	if s.MaxLoaded > 0 {
		env = append(env, EnvMaxLoaded+"="+strconv.Itoa(s.MaxLoaded))
	}
	env = append(env, EnvNumParallel+"=1")
	if s.ContextLength > 0 {
		env = append(env, EnvContextLength+"="+strconv.Itoa(s.ContextLength))
	}
	if s.KVCacheType != "" && s.KVCacheType != "f16" {
		env = append(env, EnvKVCacheType+"="+s.KVCacheType)
	}
	return env
}
