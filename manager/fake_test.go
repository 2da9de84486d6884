package manager_test

import (
	"context"

	"github.com/vramkeeper/vramkeeper/internal/fakert"
	"github.com/vramkeeper/vramkeeper/manager/card"
)

const gib = 1 << 30

// fakeRuntime is the shared in-memory Ollama (internal/fakert) under the
// short names these tests were written with.
type fakeRuntime struct{ *fakert.Runtime }

func newFakeRuntime() *fakeRuntime { return &fakeRuntime{fakert.New()} }

// add installs a llama-shaped model; see fakert.Runtime.Add.
func (f *fakeRuntime) add(name string, paramsB float64, caps []string, skew float64) {
	f.Add(name, paramsB, caps, skew)
}

func (f *fakeRuntime) remove(name string)       { f.Remove(name) }
func (f *fakeRuntime) setDown(down bool)        { f.SetDown(down) }
func (f *fakeRuntime) loadExternal(name string) { f.LoadExternal(name) }
func (f *fakeRuntime) runningNames() []string   { return f.RunningNames() }
func (f *fakeRuntime) loadCount(name string) int {
	return f.LoadCount(name)
}

// fakeGPU is an NVML-like card over a fakeRuntime; see fakert.GPU.
type fakeGPU struct {
	rt     *fakeRuntime
	total  uint64
	others uint64
}

func (g *fakeGPU) Read(ctx context.Context) (card.VRAM, error) {
	return (&fakert.GPU{RT: g.rt.Runtime, Total: g.total, Others: g.others}).Read(ctx)
}

// seedCatalogue installs 27 models from 0.5B to 70B shaped like a typical
// user's Ollama library.
func seedCatalogue(f *fakeRuntime) { fakert.SeedCatalogue(f.Runtime) }
