// Package estimate predicts how much memory a model takes once loaded, from
// its metadata alone: weights + KV cache at the context length used + compute
// graph + backend overhead. It is pure: no I/O, no clocks, no goroutines.
package estimate

// Model is the metadata the estimator reads, as Ollama's /api/show (verbose)
// returns it: the architecture, the GGUF key/values (keys keep their
// "<arch>." prefix) and every tensor with its ggml type name and shape.
type Model struct {
	Arch    string
	KV      map[string]any
	Tensors []Tensor
	// ProjectorKV and ProjectorTensors describe a separate vision projector
	// (Ollama's projector_info), if any.
	ProjectorKV      map[string]any
	ProjectorTensors []Tensor
}

// Tensor is one weight tensor.
type Tensor struct {
	Name  string
	Type  string // ggml type name: "F32", "F16", "Q4_0", "Q4_K", ...
	Shape []uint64
}
