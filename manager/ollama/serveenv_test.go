package ollama

import (
	"slices"
	"testing"
)

func TestServeEnv(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name string
		s    ServeSettings
		want []string
	}{
		{"v0.34 with the default budget: llama.cpp keeps 1 GiB free",
			ServeSettings{Version: "0.34.2", CardBytes: 8 * gib, BudgetBytes: 7 * gib, MaxLoaded: 2, ContextLength: 4096},
			[]string{"LLAMA_ARG_FIT_TARGET=1024", "OLLAMA_MAX_LOADED_MODELS=2", "OLLAMA_NUM_PARALLEL=1", "OLLAMA_CONTEXT_LENGTH=4096"}},
		{"a budget of 80 % of 24 GiB leaves 4915.2 MiB, rounded up",
			ServeSettings{Version: "v0.30.0", CardBytes: 24 * gib, BudgetBytes: 24 * gib * 8 / 10},
			[]string{"LLAMA_ARG_FIT_TARGET=4916", "OLLAMA_NUM_PARALLEL=1"}},
		{"unknown version: the newest generation",
			ServeSettings{CardBytes: 8 * gib, BudgetBytes: 6 * gib, KVCacheType: "q8_0"},
			[]string{"LLAMA_ARG_FIT_TARGET=2048", "OLLAMA_NUM_PARALLEL=1", "OLLAMA_KV_CACHE_TYPE=q8_0"}},
		{"v0.17 has no llama.cpp fit",
			ServeSettings{Version: "0.17.4", CardBytes: 8 * gib, BudgetBytes: 7 * gib, MaxLoaded: 3},
			[]string{"OLLAMA_MAX_LOADED_MODELS=3", "OLLAMA_NUM_PARALLEL=1"}},
		{"a budget over the card leaves nothing free",
			ServeSettings{Version: "0.34.2", CardBytes: 8 * gib, BudgetBytes: 9 * gib, KVCacheType: "f16"},
			[]string{"LLAMA_ARG_FIT_TARGET=0", "OLLAMA_NUM_PARALLEL=1"}},
		{"no GPU known: no fit target",
			ServeSettings{Version: "0.34.2"},
			[]string{"OLLAMA_NUM_PARALLEL=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ServeEnv(tt.s)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ServeEnv(%+v) =\n%q\nwant\n%q", tt.s, got, tt.want)
			}
		})
	}
}
