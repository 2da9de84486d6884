package estimate

import "testing"

func TestStamped(t *testing.T) {
	for v, want := range map[string]bool{
		"0.17.4": true, "v0.30.0-rc3": true, "1.0.0": true,
		"0.0.0": false, "": false, "dev": false, "0.0.0-abcdef": false,
	} {
		if got := Stamped(v); got != want {
			t.Errorf("Stamped(%q) = %v, want %v", v, got, want)
		}
	}
}

// A load's /api/ps size names the accounting that produced it: the
// generation inferred from it estimates that model exactly, and an
// architecture whose engine moved between generations (gemma4, v0.18)
// tells them apart.
func TestInferGeneration(t *testing.T) {
	tests := []struct {
		name   string
		m      Model
		served Generation
		want   Generation
		says   string
	}{
		{"gemma4 on v0.17: llama.cpp engine", llamaModel("gemma4"), TwoEngines, TwoEngines, "v0.17"},
		{"gemma4 on v0.18: Ollama engine", llamaModel("gemma4"), TwoEnginesV018, TwoEnginesV018, "v0.18-v0.29"},
		{"gemma3 on llama-server", gemma3Model(), LlamaServer, LlamaServer, "v0.30+"},
		// v0.17 and v0.18 account alike for these: the newer, saying so
		{"gemma3 on v0.17", gemma3Model(), TwoEngines, TwoEnginesV018, "v0.17 or v0.18-v0.29"},
		{"llama on v0.17", llamaModel("llama"), TwoEngines, TwoEnginesV018, "v0.17 or v0.18-v0.29"},
	}
	for _, dev := range []Device{CPU, GPU} {
		for _, tt := range tests {
			o := Options{NumCtx: 4096, Device: dev, Generation: tt.served}
			b, err := Estimate(tt.m, o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := InferGeneration(tt.m, o, b.Reported(dev))
			if err != nil || got.Generation != tt.want || got.RelErr != 0 || got.String() != tt.says {
				t.Errorf("%s (device %v): inferred %+v (%s), %v; want %v (%s)", tt.name, dev, got, got, err, tt.want, tt.says)
			}
		}
	}
	if _, err := InferGeneration(llamaModel("llama"), Options{}, 0); err == nil {
		t.Error("inferred from nothing measured")
	}
}

// A model split over two GPUs pays the driver's context on each.
func TestOverheadPerDevice(t *testing.T) {
	one, err := Estimate(llamaModel("llama"), Options{NumCtx: 2048, Device: GPU})
	if err != nil {
		t.Fatal(err)
	}
	two, err := Estimate(llamaModel("llama"), Options{NumCtx: 2048, Device: GPU, Devices: 2})
	if err != nil {
		t.Fatal(err)
	}
	if two.Overhead != 2*DefaultGPUOverhead || two.Total-one.Total != DefaultGPUOverhead {
		t.Errorf("overhead on two GPUs %d (total +%d), want %d (+%d)", two.Overhead, two.Total-one.Total, 2*DefaultGPUOverhead, DefaultGPUOverhead)
	}
	if one.Reported(GPU) != two.Reported(GPU) {
		t.Error("what the server reports changed with the GPU count")
	}
}
