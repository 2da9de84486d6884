package ggufgen

import (
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/x448/float16"
)

// patternBlocks is how many ggml blocks one repeating pattern holds: big
// enough that weights look random to the model, small enough to build fast.
const patternBlocks = 2048

// pattern returns a run of valid blocks of type t holding small random
// weights (about ±0.05, like an initialised model) or ones.
func pattern(t ggml.TensorType, ones bool, rng *rand.Rand) []byte {
	if ones {
		b := make([]byte, 4*patternBlocks)
		for i := 0; i < len(b); i += 4 {
			binary.LittleEndian.PutUint32(b[i:], math.Float32bits(1))
		}
		return b
	}
	switch t {
	case ggml.TensorTypeF32:
		b := make([]byte, 4*patternBlocks)
		for i := 0; i < len(b); i += 4 {
			binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32(rng.NormFloat64()*0.02)))
		}
		return b
	case ggml.TensorTypeF16:
		b := make([]byte, 2*patternBlocks)
		for i := 0; i < len(b); i += 2 {
			binary.LittleEndian.PutUint16(b[i:], float16.Fromfloat32(float32(rng.NormFloat64()*0.02)).Bits())
		}
		return b
	case ggml.TensorTypeQ8_0:
		// block: f16 scale, 32 int8
		b := make([]byte, 34*patternBlocks)
		for i := 0; i < len(b); i += 34 {
			binary.LittleEndian.PutUint16(b[i:], float16.Fromfloat32(0.0004).Bits())
			for j := range 32 {
				b[i+2+j] = byte(int8(rng.IntN(255) - 127))
			}
		}
		return b
	case ggml.TensorTypeQ4_0:
		// block: f16 scale, 16 bytes of nibbles (value = nibble-8)
		b := make([]byte, 18*patternBlocks)
		for i := 0; i < len(b); i += 18 {
			binary.LittleEndian.PutUint16(b[i:], float16.Fromfloat32(0.006).Bits())
			for j := range 16 {
				b[i+2+j] = byte(rng.IntN(256))
			}
		}
		return b
	}
	return nil // Validate rejects every other type
}

// repeatWriter writes size bytes by repeating pat; it is the tensor's data
// for ggml.WriteGGUF.
type repeatWriter struct {
	pat  []byte
	size uint64
}

func (r repeatWriter) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for left := r.size; left > 0; {
		chunk := r.pat[:min(uint64(len(r.pat)), left)]
		k, err := w.Write(chunk)
		n += int64(k)
		if err != nil {
			return n, err
		}
		left -= uint64(k)
	}
	return n, nil
}
