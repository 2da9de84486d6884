package ggufgen

import (
	"fmt"
	"strings"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// Model is the metadata the estimator reads for a file of this spec (as
// /api/show would return it, less the tokenizer), without writing the
// file: the estimate of a model before it is downloaded.
func (s Spec) Model() (estimate.Model, error) {
	if err := s.Validate(); err != nil {
		return estimate.Model{}, fmt.Errorf("ggufgen: invalid spec: %w", err)
	}
	specs, err := layout(s)
	if err != nil {
		return estimate.Model{}, fmt.Errorf("ggufgen: %s layout: %w", s.Arch, err)
	}
	kv := map[string]any{}
	for k, v := range archKV(s) {
		// ggml.WriteGGUF prefixes these with the architecture.
		if !strings.HasPrefix(k, "general.") {
			k = s.Arch + "." + k
		}
		kv[k] = v
	}
	m := estimate.Model{Arch: s.Arch, KV: kv}
	for _, ts := range specs {
		m.Tensors = append(m.Tensors, estimate.Tensor{Name: ts.name, Type: ts.typ.String(), Shape: ts.shape})
	}
	return m, nil
}
