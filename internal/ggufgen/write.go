package ggufgen

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"github.com/ollama/ollama/fs/ggml"
)

// Write validates s and writes the model as GGUF to w. It goes through a
// temporary file (ggml.WriteGGUF writes tensors at offsets); for large
// models write straight to the destination with WriteFile.
func Write(w io.Writer, s Spec) error {
	f, err := os.CreateTemp("", "ggufgen-*.gguf")
	if err != nil {
		return fmt.Errorf("ggufgen: temp file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := writeTo(f, s); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("ggufgen: rewind %s: %w", f.Name(), err)
	}
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("ggufgen: copy %s: %w", f.Name(), err)
	}
	return nil
}

// WriteFile validates s and writes the model to a new file at path,
// streaming tensor data so that a model of gigabytes never sits in memory.
// It returns the file's size; on error no file is left behind.
func WriteFile(path string, s Spec) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, fmt.Errorf("ggufgen: %w", err)
	}
	err = writeTo(f, s)
	var size int64
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil {
			size = fi.Size()
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("ggufgen: close %s: %w", path, cerr)
	}
	if err != nil {
		os.Remove(path)
		return 0, err
	}
	return size, nil
}

func writeTo(f *os.File, s Spec) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("ggufgen: invalid spec: %w", err)
	}
	specs, err := layout(s)
	if err != nil {
		return fmt.Errorf("ggufgen: %s layout: %w", s.Arch, err)
	}

	// A fixed seed: the same spec always gives the same bytes (and digest),
	// so Ollama's blob store deduplicates repeated test runs.
	rng := rand.New(rand.NewPCG(uint64(len(specs)), uint64(s.Embd)))
	patterns := map[[2]any][]byte{}
	tensors := make([]*ggml.Tensor, 0, len(specs))
	for _, ts := range specs {
		key := [2]any{ts.typ, ts.ones}
		if _, ok := patterns[key]; !ok {
			patterns[key] = pattern(ts.typ, ts.ones, rng)
		}
		t := ts.tensor()
		t.WriterTo = repeatWriter{pat: patterns[key], size: t.Size()}
		tensors = append(tensors, t)
	}
	if err := ggml.WriteGGUF(f, metadata(s), tensors); err != nil {
		return fmt.Errorf("ggufgen: write %s to %s: %w", s.Arch, f.Name(), err)
	}
	return nil
}

// fileType is general.file_type for the weight type (llama_ftype).
func fileType(wt string) uint32 {
	return map[string]uint32{"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7}[wt]
}

// metadata returns every key the architecture's loader reads without a
// usable default. Keys without a "general." or "tokenizer." prefix get the
// "<arch>." prefix from ggml.WriteGGUF.
func metadata(s Spec) ggml.KV {
	kv := archKV(s)
	for k, v := range tokenizerKV(s) {
		kv[k] = v
	}
	return kv
}

// archKV is the metadata without the tokenizer, which is big and which the
// estimator does not need (token_embd's shape gives the vocabulary).
func archKV(s Spec) ggml.KV {
	kv := ggml.KV{
		"general.architecture":             s.Arch,
		"general.name":                     fmt.Sprintf("ggufgen-%s-%dx%d", s.Arch, s.Layers, s.Embd),
		"general.file_type":                fileType(s.WeightType),
		"general.quantization_version":     uint32(2),
		"block_count":                      uint32(s.Layers),
		"context_length":                   uint32(s.ContextLength),
		"embedding_length":                 uint32(s.Embd),
		"feed_forward_length":              uint32(s.FFN),
		"attention.head_count":             uint32(s.Heads),
		"attention.head_count_kv":          uint32(s.KVHeads),
		"attention.layer_norm_rms_epsilon": float32(1e-6),
	}
	switch s.Arch {
	case "llama", "qwen2", "phi3":
		kv["rope.dimension_count"] = uint32(s.headDim())
		kv["rope.freq_base"] = float32(10000)
	case "gemma2", "gemma3":
		// Real gemma files carry key/value_length; gemma3 would default to 256.
		kv["attention.key_length"] = uint32(s.headDim())
		kv["attention.value_length"] = uint32(s.headDim())
		kv["attention.sliding_window"] = uint32(s.slidingWindow())
		if s.Arch == "gemma2" {
			kv["attn_logit_softcapping"] = float32(50)
			kv["final_logit_softcapping"] = float32(30)
		} else {
			kv["rope.freq_base"] = float32(1e6)
			kv["rope.local.freq_base"] = float32(10000)
		}
	case "qwen3moe":
		kv["attention.key_length"] = uint32(s.headDim())
		kv["attention.value_length"] = uint32(s.headDim())
		kv["rope.freq_base"] = float32(1e6)
		kv["expert_feed_forward_length"] = uint32(s.FFN)
	case "bert", "nomic-bert":
		delete(kv, "attention.layer_norm_rms_epsilon")
		kv["attention.layer_norm_epsilon"] = float32(1e-12)
		kv["attention.causal"] = false
		kv["pooling_type"] = uint32(1) // mean
		if s.Arch == "nomic-bert" {
			kv["rope.freq_base"] = float32(1000)
		}
	}
	if s.Arch == "phi3" && s.SlidingWindow > 0 {
		kv["attention.sliding_window"] = uint32(s.SlidingWindow)
	}
	if s.Experts > 0 {
		kv["expert_count"] = uint32(s.Experts)
		kv["expert_used_count"] = uint32(s.ExpertsUsed)
	}
	return kv
}
