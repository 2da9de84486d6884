package estimate

import (
	"slices"
	"strconv"
	"strings"
)

// Generation is the line of Ollama servers whose memory accounting an
// estimate follows. Pick it from the server's /api/version with
// ParseGeneration; the zero value is the pinned v0.17 accounting, so a
// caller that does not know the server keeps today's numbers.
type Generation int

const (
	// TwoEngines is Ollama up to v0.17: the Ollama engine (real ggml
	// allocations) for the architectures it lists, the llama.cpp engine
	// (Ollama's own pre-load estimate in /api/ps) for the rest.
	TwoEngines Generation = iota
	// TwoEnginesV018 is v0.18 to v0.29: the same accounting, with gemma4,
	// laguna and nemotron_h_omni moved to the Ollama engine
	// (fs/ggml/ggml.go at v0.24.0).
	TwoEnginesV018
	// LlamaServer is v0.30 on: upstream llama-server runs every GGUF model
	// and /api/ps reports the buffers it logs (model, KV, compute, output,
	// recurrent state); layer placement is llama.cpp's --fit.
	LlamaServer
)

// Newest is the latest generation modelled.
const Newest = LlamaServer

func (g Generation) String() string {
	switch g {
	case TwoEngines:
		return "v0.17"
	case TwoEnginesV018:
		return "v0.18-v0.29"
	case LlamaServer:
		return "v0.30+"
	}
	return "generation(" + strconv.Itoa(int(g)) + ")"
}

// ParseGeneration maps a server version ("0.17.4", "v0.30.0-rc3") to its
// accounting. A version that says nothing (empty, unparseable, or the
// 0.0.0 of a build from source without a stamped version) gets the newest
// generation: Ollama updates itself, so an unknown server is most likely a
// current one, and a source build is newer than any release. A known older
// version keeps the accounting it really has.
func ParseGeneration(version string) Generation {
	major, minor, ok := majorMinor(version)
	switch {
	case !ok || (major == 0 && minor == 0):
		return Newest
	case major > 0 || minor >= 30:
		return LlamaServer
	case minor >= 18:
		return TwoEnginesV018
	}
	return TwoEngines
}

func majorMinor(v string) (major, minor int, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	v, _, _ = strings.Cut(v, "-") // pre-release suffix
	v, _, _ = strings.Cut(v, "+") // build metadata
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return 0, 0, false
	}
	var err1, err2 error
	major, err1 = strconv.Atoi(parts[0])
	minor, err2 = strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return 0, 0, false
	}
	return major, minor, true
}

// ollamaEngineArchs are the architectures Ollama v0.17 runs on its own
// engine (fs/ggml/ggml.go OllamaEngineRequired); everything else goes to
// llama.cpp, whose memory Ollama only estimates.
var ollamaEngineArchs = []string{
	"bert", "deepseek2", "deepseekocr", "gemma3", "gemma3n", "gptoss", "gpt-oss",
	"llama4", "mistral3", "mllama", "nemotron_h", "nemotron_h_moe", "nomic-bert",
	"olmo3", "qwen25vl", "qwen3", "qwen3moe", "qwen35", "qwen35moe", "qwen3next",
	"qwen3vl", "qwen3vlmoe", "glm4moelite", "glmocr", "lfm2", "lfm2moe",
}

// flashAttentionByDefault lists the architectures the Ollama engine runs
// with flash attention unless OLLAMA_FLASH_ATTENTION says otherwise (v0.17).
var flashAttentionByDefault = []string{
	"bert", "gemma3", "glm4moelite", "glmocr", "gptoss", "gpt-oss", "lfm2", "lfm2moe",
	"mistral3", "nemotron_h", "nemotron_h_moe", "olmo3", "qwen3", "qwen3moe",
	"qwen35", "qwen35moe", "qwen3next", "qwen3vl", "qwen3vlmoe",
}

// singleSequenceArchs run with one sequence whatever OLLAMA_NUM_PARALLEL
// says (server/sched.go, v0.17).
var singleSequenceArchs = []string{"mllama", "qwen3vl", "qwen3vlmoe", "qwen35", "qwen35moe",
	"qwen3next", "lfm2", "lfm2moe", "nemotron_h", "nemotron_h_moe"}

// The per-generation lists: what each later version adds to v0.17's.
func (g Generation) ollamaEngineArchs() []string {
	if g >= TwoEnginesV018 {
		return append(slices.Clone(ollamaEngineArchs), "gemma4", "laguna", "nemotron_h_omni")
	}
	return ollamaEngineArchs
}

func (g Generation) flashAttentionByDefault() []string {
	if g >= TwoEnginesV018 {
		return append(slices.Clone(flashAttentionByDefault), "gemma4", "nemotron_h_omni")
	}
	return flashAttentionByDefault
}

func (g Generation) singleSequenceArchs() []string {
	if g >= TwoEnginesV018 {
		return append(slices.Clone(singleSequenceArchs), "nemotron_h_omni")
	}
	return singleSequenceArchs
}

// noFlashAttention lists architectures Ollama never runs with flash
// attention (GGML.SupportsFlashAttention).
func (g Generation) noFlashAttention() []string {
	if g >= TwoEnginesV018 {
		return []string{"gemma2", "grok"}
	}
	return []string{"gemma2"}
}
