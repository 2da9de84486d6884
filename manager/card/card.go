// Package card holds what a driver reads of the graphics cards: each
// card's memory, their sum, and the names of the drivers that answer. The
// GPU readers (manager/gpu) make these readings and the manager decides on
// them; neither needs the other to say what a reading is.
package card

import (
	"slices"
	"strings"
)

// The drivers a reading can come from (VRAM.Source, Card.Source).
const (
	SourceNVML      = "nvml"
	SourceAMDGPU    = "amdgpu"
	SourceXe        = "xe"
	SourceI915      = "i915"
	SourceDXGI      = "dxgi"
	SourceEstimated = "estimated"
)

// sourceLabels say each source the way the window and the CLI show it.
var sourceLabels = map[string]string{
	SourceNVML: "NVML", SourceAMDGPU: "amdgpu (kernel)", SourceXe: "xe (kernel)",
	SourceI915: "i915 (kernel)", SourceDXGI: "DXGI", SourceEstimated: "estimated",
}

// SourceLabel says a source in words: "NVML", "amdgpu (kernel)",
// "NVML + amdgpu (kernel)" for a machine read by two drivers.
func SourceLabel(source string) string {
	parts := strings.Split(source, "+")
	for i, p := range parts {
		if l, ok := sourceLabels[p]; ok {
			parts[i] = l
		}
	}
	return strings.Join(parts, " + ")
}

// Card is one graphics card as its driver reads it.
type Card struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	// ID tells the card apart on this machine: its PCI address, or the
	// adapter's LUID on Windows; empty where the driver gives none.
	ID    string `json:"id,omitempty"`
	Total uint64 `json:"total_bytes"`
	Used  uint64 `json:"used_bytes"`
	Free  uint64 `json:"free_bytes"`
	// Ollama is what Ollama's processes hold on this card; OllamaKnown
	// says whether the driver could tell (it lists processes, and theirs
	// were readable), else Ollama is 0 and means nothing.
	Ollama      uint64 `json:"ollama_bytes,omitempty"`
	OllamaKnown bool   `json:"ollama_known,omitempty"`
	// Integrated: the GPU shares system memory; Ollama's models are not
	// budgeted on it and it is shown for what it is.
	Integrated bool `json:"integrated,omitempty"`
}

// VRAM is one reading of the card (all devices summed).
type VRAM struct {
	// Source names the driver that answered ("nvml", "amdgpu", "xe",
	// "i915", "dxgi", joined with "+" when several did), "estimated" when
	// none did; SourceLabel says it in words.
	Source string `json:"source"`
	Name   string `json:"name,omitempty"` // device name(s)
	Total  uint64 `json:"total_bytes"`
	// Used and Free are the driver's numbers; with Source "estimated" they
	// are zero and the manager derives use from the server's sizes.
	Used uint64 `json:"used_bytes"`
	Free uint64 `json:"free_bytes"`
	// Ollama is what Ollama's processes hold according to the driver
	// (CUDA context and pools included); 0 when the driver cannot tell.
	Ollama uint64 `json:"ollama_bytes,omitempty"`
	// Note says why the source is what it is (e.g. "NVML: driver not found").
	Note string `json:"note,omitempty"`
	// Cards are the readings of each card apart; the sums above are over
	// the ones Ollama uses.
	Cards []Card `json:"cards,omitempty"`
}

// Measured reports whether a driver answered: the numbers are the card's,
// not the configured size.
func (v VRAM) Measured() bool { return v.Source != "" && v.Source != SourceEstimated }

// Equal reports whether two readings say the same, cards included.
func (v VRAM) Equal(w VRAM) bool { return v.key() == w.key() && slices.Equal(v.Cards, w.Cards) }

// vramKey is a reading without its cards, comparable.
type vramKey struct {
	source, name, note        string
	total, used, free, ollama uint64
}

func (v VRAM) key() vramKey {
	return vramKey{source: v.Source, name: v.Name, note: v.Note, total: v.Total, used: v.Used, free: v.Free, ollama: v.Ollama}
}
