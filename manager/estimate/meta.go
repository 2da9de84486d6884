package estimate

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
)

// ErrMissingKey is wrapped by errors about metadata the estimate cannot do
// without.
var ErrMissingKey = errors.New("missing model metadata key")

// meta reads GGUF keys with the architecture prefix, accepting the value
// shapes /api/show produces after JSON decoding (float64, []any) as well as
// native GGUF ones (uint32, []int32, ...).
type meta struct {
	arch string
	kv   map[string]any
}

func (m meta) key(k string) string { return m.arch + "." + k }

func (m meta) has(k string) bool { _, ok := m.kv[m.key(k)]; return ok }

// uint reads a scalar; ok is false if the key is absent or not a number.
func (m meta) uint(k string) (uint64, bool) {
	return toUint(m.kv[m.key(k)])
}

func (m meta) mustUint(k string) (uint64, error) {
	v, ok := m.uint(k)
	if !ok || v == 0 {
		return 0, fmt.Errorf("%w: %s", ErrMissingKey, m.key(k))
	}
	return v, nil
}

// perLayer reads a key that is either a scalar or one value per layer
// (head_count_kv of hybrid models); ok is false if absent.
func (m meta) perLayer(k string, layers int) ([]uint64, bool, error) {
	v, present := m.kv[m.key(k)]
	if !present || v == nil {
		return nil, false, nil
	}
	out := make([]uint64, layers)
	if u, ok := toUint(v); ok {
		for i := range out {
			out[i] = u
		}
		return out, true, nil
	}
	arr, ok := toSlice(v)
	if !ok || len(arr) == 0 {
		return nil, false, fmt.Errorf("%s: want a number or an array of numbers, got %T", m.key(k), v)
	}
	for i := range out {
		// Shorter arrays repeat their last value, as Ollama's HeadCountKV does.
		u, ok := toUint(arr[min(i, len(arr)-1)])
		if !ok {
			return nil, false, fmt.Errorf("%s[%d]: not a number: %v", m.key(k), i, arr[i])
		}
		out[i] = u
	}
	return out, true, nil
}

// bools reads a boolean array (sliding_window_pattern).
func (m meta) bools(k string) []bool {
	arr, ok := toSlice(m.kv[m.key(k)])
	if !ok {
		return nil
	}
	out := make([]bool, len(arr))
	for i, v := range arr {
		b, _ := v.(bool)
		out[i] = b
	}
	return out
}

// arrayLen is the length of any array value, e.g. tokenizer.ggml.tokens.
func arrayLen(v any) (int, bool) {
	arr, ok := toSlice(v)
	return len(arr), ok
}

func toUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case float64:
		return uint64(x), x >= 0
	case float32:
		return uint64(x), x >= 0
	case json.Number:
		n, err := x.Int64()
		return uint64(n), err == nil && n >= 0
	case uint8, uint16, uint32, uint64, uint:
		return reflect.ValueOf(x).Uint(), true
	case int8, int16, int32, int64, int:
		n := reflect.ValueOf(x).Int()
		return uint64(n), n >= 0
	}
	return 0, false
}

func toSlice(v any) ([]any, bool) {
	if v == nil {
		return nil, false
	}
	if a, ok := v.([]any); ok {
		return a, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

func minMax(xs []uint64) (lo, hi uint64) {
	return slices.Min(xs), slices.Max(xs)
}
