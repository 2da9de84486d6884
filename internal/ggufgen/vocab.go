package ggufgen

import "fmt"

// Token types as GGUF stores them (llama.cpp's llama_token_type).
const (
	typeNormal  int32 = 1
	typeUnknown int32 = 2
	typeControl int32 = 3
	typeByte    int32 = 6
)

// tokenizerKV returns the tokenizer.* keys for the architecture's loader.
func tokenizerKV(s Spec) map[string]any {
	switch s.Arch {
	case "bert", "nomic-bert":
		return wordPieceVocab(s.Vocab)
	case "qwen3moe":
		// The Ollama engine builds qwen3 with a byte-level BPE tokenizer only.
		return bpeVocab(s.Vocab)
	default:
		// SentencePiece works for every llama.cpp architecture and for gemma3.
		var specials []string
		if s.Arch == "phi3" {
			// llama.cpp sets attributes on these by name for any model
			// named phi3 and fails if they are missing.
			specials = []string{"<|endoftext|>", "<|assistant|>", "<|end|>", "<|user|>"}
		}
		return sentencePieceVocab(s.Vocab, specials...)
	}
}

// filler names the n-th synthetic piece; unique and printable.
func filler(prefix string, n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := []byte(prefix)
	for {
		b = append(b, letters[n%26])
		n /= 26
		if n == 0 {
			return string(b)
		}
		n--
	}
}

// sentencePieceVocab is a llama-style vocabulary; specials go last, as
// control tokens, the way real checkpoints append them.
func sentencePieceVocab(n int, specials ...string) map[string]any {
	tokens := make([]string, 0, n)
	types := make([]int32, 0, n)
	scores := make([]float32, 0, n)
	add := func(tok string, typ int32) {
		tokens = append(tokens, tok)
		types = append(types, typ)
		// SentencePiece prefers higher scores; byte fallbacks rank last.
		scores = append(scores, -float32(len(tokens)))
	}
	add("<unk>", typeUnknown)
	add("<s>", typeControl)
	add("</s>", typeControl)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), typeByte)
	}
	for i := 0; len(tokens) < n-len(specials); i++ {
		add(filler("▁", i), typeNormal)
	}
	for _, sp := range specials {
		add(sp, typeControl)
	}
	return map[string]any{
		"tokenizer.ggml.model":            "llama",
		"tokenizer.ggml.tokens":           tokens,
		"tokenizer.ggml.token_type":       types,
		"tokenizer.ggml.scores":           scores,
		"tokenizer.ggml.unknown_token_id": uint32(0),
		"tokenizer.ggml.bos_token_id":     uint32(1),
		"tokenizer.ggml.eos_token_id":     uint32(2),
		"tokenizer.ggml.add_bos_token":    true,
		"tokenizer.ggml.add_eos_token":    false,
	}
}

// byteUnicode is GPT-2's bytes_to_unicode: printable bytes map to themselves,
// the others to U+0100 upwards, so every byte is one visible rune.
func byteUnicode() []string {
	out := make([]string, 256)
	next := rune(256)
	for b := range 256 {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			out[b] = string(rune(b))
		} else {
			out[b] = string(next)
			next++
		}
	}
	return out
}

func bpeVocab(n int) map[string]any {
	tokens := byteUnicode()
	types := make([]int32, 0, n)
	for range tokens {
		types = append(types, typeNormal)
	}
	// A few merges so the BPE has something to merge; "Ġ" is the space byte.
	merges := []string{"Ġ t", "Ġ a", "h e", "i n", "Ġt he"}
	for _, m := range []string{"Ġt", "Ġa", "he", "in", "Ġthe"} {
		tokens = append(tokens, m)
		types = append(types, typeNormal)
	}
	specials := []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
	for i := 0; len(tokens) < n-len(specials); i++ {
		tokens = append(tokens, filler("Ġw", i))
		types = append(types, typeNormal)
	}
	eos := uint32(len(tokens))
	for _, sp := range specials {
		tokens = append(tokens, sp)
		types = append(types, typeControl)
	}
	return map[string]any{
		"tokenizer.ggml.model":            "gpt2",
		"tokenizer.ggml.pre":              "qwen2",
		"tokenizer.ggml.tokens":           tokens,
		"tokenizer.ggml.token_type":       types,
		"tokenizer.ggml.merges":           merges,
		"tokenizer.ggml.bos_token_id":     eos,
		"tokenizer.ggml.eos_token_id":     eos,
		"tokenizer.ggml.padding_token_id": eos,
		"tokenizer.ggml.add_bos_token":    false,
	}
}

func wordPieceVocab(n int) map[string]any {
	tokens := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	types := []int32{typeControl, typeUnknown, typeControl, typeControl, typeControl}
	add := func(tok string) {
		tokens = append(tokens, tok)
		types = append(types, typeNormal)
	}
	// GGML WordPiece vocabularies mark word starts with "▁" (not "##" on
	// continuations). Every printable ASCII character as a word start and as
	// a continuation lets any ASCII text tokenize without [UNK].
	for c := '!'; c <= '~'; c++ {
		add("▁" + string(c))
	}
	for c := '!'; c <= '~' && len(tokens) < n; c++ {
		add(string(c))
	}
	for i := 0; len(tokens) < n; i++ {
		add(filler("▁w", i))
	}
	scores := make([]float32, len(tokens))
	return map[string]any{
		"tokenizer.ggml.model":              "bert",
		"tokenizer.ggml.tokens":             tokens,
		"tokenizer.ggml.token_type":         types,
		"tokenizer.ggml.scores":             scores,
		"tokenizer.ggml.padding_token_id":   uint32(0),
		"tokenizer.ggml.unknown_token_id":   uint32(1),
		"tokenizer.ggml.cls_token_id":       uint32(2),
		"tokenizer.ggml.separator_token_id": uint32(3),
		"tokenizer.ggml.mask_token_id":      uint32(4),
	}
}
