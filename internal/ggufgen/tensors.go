package ggufgen

import (
	"fmt"

	"github.com/ollama/ollama/fs/ggml"
)

// tensorSpec is one tensor to write: name, ggml shape (ne0 first) and type.
type tensorSpec struct {
	name  string
	shape []uint64
	typ   ggml.TensorType
	// ones fills a norm weight with 1.0 instead of small random values, so
	// activations keep their scale.
	ones bool
}

func (ts tensorSpec) tensor() *ggml.Tensor {
	return &ggml.Tensor{Name: ts.name, Kind: uint32(ts.typ), Shape: ts.shape}
}

// layout lists every tensor the architecture's loader expects, and no
// other: llama.cpp refuses files with tensors it did not create.
func layout(s Spec) ([]tensorSpec, error) {
	wt, err := ggml.ParseTensorType(s.WeightType)
	if err != nil {
		return nil, fmt.Errorf("weight type: %w", err)
	}
	E, F, V := uint64(s.Embd), uint64(s.FFN), uint64(s.Vocab)
	hd := uint64(s.headDim())
	q, kv := hd*uint64(s.Heads), hd*uint64(s.KVHeads)
	X, XU := uint64(s.Experts), s.ExpertsUsed

	var ts []tensorSpec
	mat := func(name string, dims ...uint64) { ts = append(ts, tensorSpec{name: name, shape: dims, typ: wt}) }
	f32 := func(name string, dims ...uint64) {
		ts = append(ts, tensorSpec{name: name, shape: dims, typ: ggml.TensorTypeF32})
	}
	norm := func(name string, n uint64) {
		ts = append(ts, tensorSpec{name: name, shape: []uint64{n}, typ: ggml.TensorTypeF32, ones: true})
	}
	layerNorm := func(name string) { norm(name+".weight", E); f32(name+".bias", E) }
	linearB := func(name string, in, out uint64) { mat(name+".weight", in, out); f32(name+".bias", out) }

	mat("token_embd.weight", E, V)

	if s.isEmbedding() {
		f32("token_types.weight", E, 2)
		if s.Arch == "bert" {
			f32("position_embd.weight", E, uint64(s.ContextLength))
		}
		layerNorm("token_embd_norm")
		for i := range s.Layers {
			b := fmt.Sprintf("blk.%d.", i)
			if s.Arch == "bert" {
				linearB(b+"attn_q", E, q)
				linearB(b+"attn_k", E, kv)
				linearB(b+"attn_v", E, kv)
				linearB(b+"attn_output", q, E)
				linearB(b+"ffn_up", E, F)
				linearB(b+"ffn_down", F, E)
			} else {
				mat(b+"attn_qkv.weight", E, q+2*kv)
				mat(b+"attn_output.weight", q, E)
				mat(b+"ffn_gate.weight", E, F)
				mat(b+"ffn_up.weight", E, F)
				mat(b+"ffn_down.weight", F, E)
			}
			layerNorm(b + "attn_output_norm")
			layerNorm(b + "layer_output_norm")
		}
		return ts, nil
	}

	norm("output_norm.weight", E)
	if !s.tied() {
		mat("output.weight", E, V)
	}
	for i := range s.Layers {
		b := fmt.Sprintf("blk.%d.", i)
		norm(b+"attn_norm.weight", E)
		norm(b+"ffn_norm.weight", E)
		if s.Arch == "phi3" {
			// phi3 fuses q/k/v and gate/up.
			mat(b+"attn_qkv.weight", E, q+2*kv)
			mat(b+"attn_output.weight", q, E)
			mat(b+"ffn_up.weight", E, 2*F)
			mat(b+"ffn_down.weight", F, E)
			continue
		}
		mat(b+"attn_q.weight", E, q)
		mat(b+"attn_k.weight", E, kv)
		mat(b+"attn_v.weight", E, kv)
		mat(b+"attn_output.weight", q, E)
		switch s.Arch {
		case "qwen2":
			f32(b+"attn_q.bias", q)
			f32(b+"attn_k.bias", kv)
			f32(b+"attn_v.bias", kv)
		case "gemma2", "gemma3":
			norm(b+"post_attention_norm.weight", E)
			norm(b+"post_ffw_norm.weight", E)
		}
		if s.Arch == "gemma3" || s.Arch == "qwen3moe" {
			norm(b+"attn_q_norm.weight", hd)
			norm(b+"attn_k_norm.weight", hd)
		}
		if X > 0 && XU > 0 {
			// The router stays F32 as converters keep it.
			f32(b+"ffn_gate_inp.weight", E, X)
			mat(b+"ffn_gate_exps.weight", E, F, X)
			mat(b+"ffn_up_exps.weight", E, F, X)
			mat(b+"ffn_down_exps.weight", F, E, X)
			continue
		}
		mat(b+"ffn_gate.weight", E, F)
		mat(b+"ffn_up.weight", E, F)
		mat(b+"ffn_down.weight", F, E)
	}
	return ts, nil
}
