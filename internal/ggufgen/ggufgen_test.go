package ggufgen

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ollama/ollama/fs/ggml"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

func small(arch string) Spec {
	s := Spec{Arch: arch, Layers: 2, Embd: 128, Heads: 4, KVHeads: 2, FFN: 256, Vocab: MinVocab,
		ContextLength: 4096, WeightType: "Q8_0"}
	switch arch {
	case "qwen3moe":
		s.Experts, s.ExpertsUsed = 4, 2
	case "bert", "nomic-bert":
		s.KVHeads = s.Heads
		s.ContextLength = 512
	}
	return s
}

func TestWriteDecodes(t *testing.T) {
	mixtral := small("llama")
	mixtral.Experts, mixtral.ExpertsUsed = 4, 2
	f16 := small("llama")
	f16.WeightType, f16.TiedEmbeddings = "F16", true
	q4 := small("qwen2")
	q4.WeightType, q4.Vocab = "Q4_0", 1000

	cases := map[string]struct {
		spec Spec
		want []string // tensors that must be present
		none []string // tensors that must be absent
	}{
		"llama":      {small("llama"), []string{"output.weight", "blk.1.ffn_gate.weight"}, nil},
		"llama-tied": {f16, []string{"token_embd.weight"}, []string{"output.weight"}},
		"mixtral":    {mixtral, []string{"blk.0.ffn_gate_exps.weight", "blk.0.ffn_gate_inp.weight"}, []string{"blk.0.ffn_gate.weight"}},
		"qwen2":      {q4, []string{"blk.0.attn_q.bias"}, nil},
		"gemma3":     {small("gemma3"), []string{"blk.0.attn_q_norm.weight", "blk.1.post_ffw_norm.weight"}, []string{"output.weight"}},
		"gemma2":     {small("gemma2"), []string{"blk.0.post_attention_norm.weight"}, []string{"output.weight"}},
		"phi3":       {small("phi3"), []string{"blk.0.attn_qkv.weight"}, []string{"blk.0.attn_q.weight"}},
		"qwen3moe":   {small("qwen3moe"), []string{"blk.1.ffn_down_exps.weight", "blk.0.attn_k_norm.weight"}, nil},
		"bert":       {small("bert"), []string{"position_embd.weight", "blk.0.attn_q.bias", "token_types.weight"}, []string{"output_norm.weight"}},
		"nomic-bert": {small("nomic-bert"), []string{"blk.0.attn_qkv.weight", "blk.1.ffn_gate.weight"}, []string{"position_embd.weight"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, tc.spec); err != nil {
				t.Fatal(err)
			}
			f, err := ggml.Decode(bytes.NewReader(buf.Bytes()), -1)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			kv := f.KV()
			if got := kv.Architecture(); got != tc.spec.Arch {
				t.Errorf("arch = %q, want %q", got, tc.spec.Arch)
			}
			if got := kv.BlockCount(); got != uint64(tc.spec.Layers) {
				t.Errorf("block_count = %d, want %d", got, tc.spec.Layers)
			}
			if got := len(kv.Strings("tokenizer.ggml.tokens")); got != tc.spec.Vocab {
				t.Errorf("vocab = %d, want %d", got, tc.spec.Vocab)
			}
			if got := kv.HeadCountKVMax(); got != uint64(tc.spec.KVHeads) {
				t.Errorf("head_count_kv = %d, want %d", got, tc.spec.KVHeads)
			}
			names := map[string]*ggml.Tensor{}
			var total uint64
			for _, tt := range f.Tensors().Items() {
				names[tt.Name] = tt
				total += tt.Size()
			}
			for _, n := range tc.want {
				if names[n] == nil {
					t.Errorf("missing tensor %s", n)
				}
			}
			for _, n := range tc.none {
				if names[n] != nil {
					t.Errorf("unexpected tensor %s", n)
				}
			}
			if emb := names["token_embd.weight"]; emb == nil || emb.Shape[1] != uint64(tc.spec.Vocab) || emb.Type() != tc.spec.WeightType {
				t.Errorf("token_embd = %+v, want [%d %d] %s", emb, tc.spec.Embd, tc.spec.Vocab, tc.spec.WeightType)
			}
			// Decode seeks past the data, so Length is where the last tensor
			// ends: the whole file, which holds every tensor's bytes.
			if f.Length != int64(buf.Len()) || uint64(buf.Len()) < total {
				t.Errorf("file %d bytes, decoded length %d, tensors %d", buf.Len(), f.Length, total)
			}
			for _, n := range []string{"output_norm.weight", "blk.0.attn_norm.weight"} {
				if tt := names[n]; tt != nil && tt.Type() != "F32" {
					t.Errorf("%s is %s, want F32", n, tt.Type())
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]struct {
		mut  func(*Spec)
		want string
	}{
		"ok":          {func(*Spec) {}, ""},
		"arch":        {func(s *Spec) { s.Arch = "gpt5" }, "arch"},
		"type":        {func(s *Spec) { s.WeightType = "Q4_K" }, "weight type"},
		"heads":       {func(s *Spec) { s.Heads = 3 }, "multiple of heads"},
		"kv heads":    {func(s *Spec) { s.KVHeads = 3 }, "multiple of kv heads"},
		"block":       {func(s *Spec) { s.FFN = 100 }, "multiples of 32"},
		"vocab":       {func(s *Spec) { s.Vocab = 100 }, "vocab"},
		"experts":     {func(s *Spec) { s.Experts = 4 }, "experts"},
		"expert arch": {func(s *Spec) { s.Arch, s.Experts, s.ExpertsUsed = "phi3", 4, 2 }, "only supported"},
		"context":     {func(s *Spec) { s.ContextLength = 0 }, "context length"},
		"qwen3moe":    {func(s *Spec) { s.Arch = "qwen3moe" }, "needs experts"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := small("llama")
			tc.mut(&s)
			err := s.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// Presets have their released models' parameter counts (model cards), so
// a generated file is as large as the real one at the same weight type.
func TestPresetSizes(t *testing.T) {
	params := map[string]float64{
		"qwen2-0.5b": 0.494e9, "llama-1b": 1.236e9, "llama-3b": 3.213e9, "mistral-7b": 7.248e9, "qwen2-7b": 7.616e9,
	}
	if got := PresetNames(); len(got) != len(params) {
		t.Fatalf("presets %v, want the %d checked here", got, len(params))
	}
	for name, want := range params {
		t.Run(name, func(t *testing.T) {
			f32, err := Preset(name, "F32")
			if err != nil {
				t.Fatal(err)
			}
			b, err := f32.TensorBytes()
			if err != nil {
				t.Fatal(err)
			}
			if got := float64(b) / 4; got < want*0.99 || got > want*1.01 {
				t.Errorf("%.3fB parameters, want %.3fB ±1 %%", got/1e9, want/1e9)
			}
			// Q4_0 stores 32 weights in 18 bytes; norms stay F32.
			q4, err := Preset(name, "Q4_0")
			if err != nil {
				t.Fatal(err)
			}
			qb, _ := q4.TensorBytes()
			if r := float64(qb) / float64(b); r < 18.0/128 || r > 18.0/128*1.01 {
				t.Errorf("Q4_0 is %.4f of F32, want about %.4f", r, 18.0/128)
			}
		})
	}
	if _, err := Preset("gpt-9", "Q4_0"); err == nil || !strings.Contains(err.Error(), "llama-1b") {
		t.Errorf("unknown preset: err %v, want the known names", err)
	}
	if _, err := Preset("llama-1b", "Q4_K"); err == nil {
		t.Error("unsupported weight type accepted")
	}
}

// WriteFile streams to the destination: the file decodes, holds every
// tensor, and a failed write leaves nothing behind or clobbers nothing.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	s := small("llama")
	path := filepath.Join(dir, "m.gguf")
	n, err := WriteFile(path, s)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := ggml.Decode(f, -1)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	tb, _ := s.TensorBytes()
	if g.Length != n || uint64(n) < tb {
		t.Errorf("WriteFile said %d bytes, decoded length %d, tensors %d", n, g.Length, tb)
	}
	if _, err := WriteFile(path, s); err == nil {
		t.Error("overwrote an existing file")
	}
	bad := s
	bad.Heads = 3
	badPath := filepath.Join(dir, "bad.gguf")
	if _, err := WriteFile(badPath, bad); err == nil {
		t.Error("invalid spec written")
	}
	if _, err := os.Stat(badPath); !os.IsNotExist(err) {
		t.Errorf("failed write left %s behind (%v)", badPath, err)
	}
}

// Model gives the estimator what it needs of a file of that spec: weights
// no larger than the file's tensors, a KV cache, and more on top.
func TestModelIsEstimated(t *testing.T) {
	for _, name := range []string{"llama-1b", "qwen2-0.5b"} {
		s, err := Preset(name, "Q4_0")
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Model()
		if err != nil {
			t.Fatal(err)
		}
		b, err := estimate.Estimate(m, estimate.Options{NumCtx: 4096})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tensors, err := s.TensorBytes()
		if err != nil {
			t.Fatal(err)
		}
		// The weights the estimate places are the file's tensors (tied
		// embeddings counted once), give or take what stays on the CPU.
		if b.Weights == 0 || b.Weights > tensors || b.KVCache == 0 || b.Total <= b.Weights {
			t.Errorf("%s: estimate %+v for %d bytes of tensors", name, b, tensors)
		}
	}
	if _, err := (Spec{Arch: "llama"}).Model(); err == nil {
		t.Error("an invalid spec gave a model")
	}
}
