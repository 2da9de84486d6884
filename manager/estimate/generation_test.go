package estimate

import "testing"

func TestParseGeneration(t *testing.T) {
	tests := []struct {
		version string
		want    Generation
	}{
		{"0.17.4", TwoEngines},
		{"v0.12.6", TwoEngines},
		{"0.18.0", TwoEnginesV018},
		{"v0.24.0", TwoEnginesV018},
		{"0.29.9", TwoEnginesV018},
		{"0.30.0-rc3", LlamaServer},
		{"0.30.0", LlamaServer},
		{"0.34.2", LlamaServer},
		{"1.0.0", LlamaServer},
		{"0.32.15+dirty", LlamaServer},
		// Nothing known: the newest, since an unknown server is most likely
		// a current one and a source build is newer than any release.
		{"", Newest},
		{"0.0.0", Newest},
		{"dev", Newest},
		{"0", Newest},
		{"0.x.1", Newest},
	}
	for _, tt := range tests {
		if got := ParseGeneration(tt.version); got != tt.want {
			t.Errorf("ParseGeneration(%q) = %v, want %v", tt.version, got, tt.want)
		}
	}
}

// gemma4 moved to the Ollama engine in v0.18; from v0.30 llama-server runs
// everything, so the same file is accounted three ways.
func TestEngineByGeneration(t *testing.T) {
	gemma4 := llamaModel("gemma4")
	tests := []struct {
		m    Model
		g    Generation
		want string
	}{
		{gemma4, TwoEngines, EngineLlamaCpp},
		{gemma4, TwoEnginesV018, EngineOllama},
		{gemma4, LlamaServer, EngineLlamaServer},
		{llamaModel("llama"), TwoEnginesV018, EngineLlamaCpp},
		{gemma3Model(), TwoEngines, EngineOllama},
		{gemma3Model(), LlamaServer, EngineLlamaServer},
	}
	for _, tt := range tests {
		b, err := Estimate(tt.m, Options{NumCtx: 2048, Device: CPU, Generation: tt.g})
		if err != nil {
			t.Fatalf("%s %v: %v", tt.m.Arch, tt.g, err)
		}
		if b.Engine != tt.want {
			t.Errorf("%s on %v: engine %s, want %s", tt.m.Arch, tt.g, b.Engine, tt.want)
		}
	}
}
