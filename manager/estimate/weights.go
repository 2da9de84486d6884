package estimate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ollama/ollama/fs/ggml"
)

// fallbackBitsPerWeight sizes tensors whose type Ollama's API cannot name
// (it reports the IQ* quantizations as "unknown"): about Q4_K's density,
// the most common neighbour of those types.
const fallbackBitsPerWeight = 4.5

// tensorBytes is a tensor's size as ggml stores it.
func tensorBytes(t Tensor) uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	tt, err := ggml.ParseTensorType(strings.ToUpper(t.Type))
	if err != nil || tt.BlockSize() == 0 || tt.TypeSize() == 0 {
		return uint64(float64(n) * fallbackBitsPerWeight / 8)
	}
	return n * tt.TypeSize() / tt.BlockSize()
}

// alignment of ggml backend buffers: the CPU buffer aligns tensors to 32
// bytes, CUDA's to 128. Ollama's engine counts the padded sizes.
func alignment(d Device) uint64 {
	if d == GPU {
		return 128
	}
	return 32
}

func padTo(n, a uint64) uint64 { return (n + a - 1) / a * a }

// layerOf returns N for "blk.N.*" tensors, else -1.
func layerOf(name string) int {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1
	}
	num, _, _ := strings.Cut(rest, ".")
	n, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return n
}

// group is the first name component, as ggml's GroupLayers keys tensors
// ("blk.3", "output", "output_norm", "token_embd", ...).
func group(name string) string {
	if n := layerOf(name); n >= 0 {
		return "blk." + strconv.Itoa(n)
	}
	g, _, _ := strings.Cut(name, ".")
	return g
}

// weightsLlamaCpp is what Ollama's llama.cpp-engine estimate counts
// (llm/server.go Load): blk.0..blk.N-1, output_norm, and output or, for
// tied models, token_embd. An untied token_embd and anything else (rope
// freqs, layers past block_count) are left out.
func weightsLlamaCpp(ts []Tensor, layers int) uint64 {
	var sum, output, embd uint64
	for _, t := range ts {
		b := tensorBytes(t)
		switch g := group(t.Name); {
		case strings.HasPrefix(g, "blk."):
			if n := layerOf(t.Name); n < layers {
				sum += b
			}
		case g == "output_norm":
			sum += b
		case g == "output":
			output += b
		case g == "token_embd":
			embd += b
		}
	}
	if output > 0 {
		return sum + output
	}
	return sum + embd
}

// weightsOllama is what the Ollama engine allocates (ml/backend/ggml
// New): every tensor padded to the buffer alignment, token_embd again as the
// output when the model has no output tensor, and per-model rope factor
// tensors repeated in each layer.
func weightsOllama(ts []Tensor, layers int, d Device) uint64 {
	a := alignment(d)
	hasOutput := false
	for _, t := range ts {
		if group(t.Name) == "output" {
			hasOutput = true
			break
		}
	}
	var sum uint64
	for _, t := range ts {
		b := padTo(tensorBytes(t), a)
		switch {
		case t.Name == "token_embd.weight" && !hasOutput:
			sum += 2 * b
		case strings.HasPrefix(t.Name, "rope_freqs") || strings.HasPrefix(t.Name, "rope_factors_"):
			sum += uint64(layers) * b
		default:
			sum += b
		}
	}
	return sum
}

func projectorBytes(ts []Tensor) uint64 {
	var sum uint64
	for _, t := range ts {
		sum += tensorBytes(t)
	}
	return sum
}

func checkTensors(ts []Tensor) error {
	if len(ts) == 0 {
		return fmt.Errorf("%w: tensors (the model has no tensor list)", ErrMissingKey)
	}
	return nil
}
