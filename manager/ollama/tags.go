package ollama

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// tagsResponse is the part of GET /api/tags the manager reads. Ollama v0.30
// added capabilities and details.context_length (api/types.go
// ListModelResponse, ModelDetails at v0.34.2); older servers leave them
// out, which decodes as nil and 0.
type tagsResponse struct {
	Models []struct {
		Name         string    `json:"name"`
		Model        string    `json:"model"`
		ModifiedAt   time.Time `json:"modified_at"`
		Size         int64     `json:"size"`
		Digest       string    `json:"digest"`
		Capabilities []string  `json:"capabilities"`
		Details      struct {
			Family            string   `json:"family"`
			Families          []string `json:"families"`
			ParameterSize     string   `json:"parameter_size"`
			QuantizationLevel string   `json:"quantization_level"`
			ContextLength     int      `json:"context_length"`
		} `json:"details"`
	} `json:"models"`
}

// decodeTags turns a /api/tags body into the installed list. A model
// without a name is skipped (nothing could address it); negative numbers
// read as unknown.
func decodeTags(body []byte) ([]serving.Installed, error) {
	var resp tagsResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("decoding /api/tags: %w", err)
	}
	out := make([]serving.Installed, 0, len(resp.Models))
	for _, m := range resp.Models {
		name := m.Name
		if name == "" {
			name = m.Model
		}
		if name == "" {
			continue
		}
		in := serving.Installed{
			Name:          name,
			Digest:        m.Digest,
			SizeBytes:     nonNegative(m.Size),
			ModifiedAt:    m.ModifiedAt,
			ContextLength: max(m.Details.ContextLength, 0),
			Family:        m.Details.Family,
			Families:      m.Details.Families,
			ParameterSize: m.Details.ParameterSize,
			Quantization:  m.Details.QuantizationLevel,
		}
		for _, c := range m.Capabilities {
			if c != "" {
				in.Capabilities = append(in.Capabilities, c)
			}
		}
		out = append(out, in)
	}
	return out, nil
}
