package estimate

import "fmt"

// Placement is where llama.cpp's --fit puts a model on one GPU.
type Placement struct {
	// GPULayers of Layers (block_count + the output layer) run on the GPU.
	GPULayers, Layers int
	// VRAM is what the GPU then holds for the model (size_vram).
	VRAM uint64
}

// Full reports whether every layer is on the GPU.
func (p Placement) Full() bool { return p.GPULayers == p.Layers }

// FitLlamaServer predicts llama.cpp's --fit for a v0.30+ load onto a GPU
// with free bytes, leaving target bytes free (LLAMA_ARG_FIT_TARGET, MiB,
// default 1024; Ollama passes -c, so fit never shrinks the context, it only
// moves layers). When the whole model does not fit, the output layer goes
// first and then the last blocks, as llama.cpp assigns layers from the end;
// the compute buffer stays on the GPU. The driver overhead is not counted:
// llama.cpp measures free memory after creating its context.
func FitLlamaServer(m Model, o Options, free, target uint64) (Placement, error) {
	o.Device, o.Generation = GPU, LlamaServer
	h, err := readHparams(m)
	if err != nil {
		return Placement{}, fmt.Errorf("fit %s: %w", m.Arch, err)
	}
	if err := checkTensors(m.Tensors); err != nil {
		return Placement{}, fmt.Errorf("fit %s: %w", h.arch, err)
	}
	s, err := setup(h, EngineLlamaServer, LlamaServer, o)
	if err != nil {
		return Placement{}, fmt.Errorf("fit %s: %w", h.arch, err)
	}
	b := llamaServer(m, h, s, o)
	room := uint64(0)
	if free > target {
		room = free - target
	}
	p := Placement{Layers: h.layers + 1}
	need := b.Total - b.Overhead - b.Projector
	if need <= room {
		p.GPULayers, p.VRAM = p.Layers, need
		return p, nil
	}

	// Per block: its weights, KV cache and recurrent state; the rest of the
	// weights (output, output_norm, a tied embedding's copy) is the output
	// layer.
	cells, swa, sliding := llamaCells(h, s)
	kv := llamaKV(h, s, cells, swa, sliding)
	perBlock := make([]uint64, h.layers)
	var blocks uint64
	for _, t := range m.Tensors {
		if n := layerOf(t.Name); n >= 0 && n < h.layers {
			w := padTo(tensorBytes(t)+cudaRowPadding(t), 128)
			perBlock[n] += w
			blocks += w
		}
	}
	rsPerLayer := uint64(0)
	if rec := recurrentLayers(h); rec > 0 {
		rsPerLayer = b.Recurrent / rec
	}
	for i := range perBlock {
		perBlock[i] += kv[i]
		if h.headsKV[i] == 0 {
			perBlock[i] += rsPerLayer
		}
	}
	used := b.Graph
	if used > room {
		return p, nil // not even the compute buffer: CPU only
	}
	if output := b.Weights - min(b.Weights, blocks); used+output <= room {
		used += output
		p.GPULayers = 1
	} else {
		p.VRAM = used
		return p, nil
	}
	for i := h.layers - 1; i >= 0; i-- {
		if used+perBlock[i] > room {
			break
		}
		used += perBlock[i]
		p.GPULayers++
	}
	p.VRAM = used
	return p, nil
}

// recurrentLayers counts the layers llamaRecurrent gives a state.
func recurrentLayers(h hparams) uint64 {
	var n uint64
	for i := range h.layers {
		if h.headsKV[i] == 0 {
			n++
		}
	}
	return n
}
