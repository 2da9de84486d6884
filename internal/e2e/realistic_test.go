//go:build linux

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
	"github.com/vramkeeper/vramkeeper/internal/testwait"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// realModel is a model of the realistic scenario: a released model's name
// and shape at the quantization Ollama's library serves it in (Q4_0 and
// Q8_0 stand in for Q4_K_M), so the file, the load time on the CPU and
// the bar are the real model's.
type realModel struct {
	Name   string
	Preset string       // ggufgen.Preset's name; "" when Spec is set
	Type   string       // weight type for Preset
	Spec   ggufgen.Spec // the shape when no preset has it
	Chat   bool         // a general chat model: "Load best for chat" picks one of these
	Code   bool         // the model "Load best for code_generation" should pick
}

// realModels are what one 8 GB card holds in practice, largest first: each
// file is deleted once Ollama has it, so the disk holds Ollama's store
// (7.7 GB) plus at most the file being pushed.
var realModels = []realModel{
	{Name: "qwen2.5-coder:7b", Preset: "qwen2-7b", Type: "Q4_0", Code: true}, // 4.4 GB
	{Name: "llama3.2:3b", Preset: "llama-3b", Type: "Q4_0", Chat: true},      // 1.9 GB
	{Name: "llama3.2:1b", Preset: "llama-1b", Type: "Q8_0", Chat: true},      // 1.3 GB
	// nomic-embed-text v1.5: 137M parameters in F16; listed, not loaded.
	{Name: "nomic-embed-text:latest", Spec: ggufgen.Spec{Arch: "nomic-bert", Layers: 12, Embd: 768, Heads: 12,
		KVHeads: 12, FFN: 3072, Vocab: 30522, ContextLength: 2048, WeightType: "F16"}}, // 0.3 GB
}

// realisticFlags claim the card most people run local models on, with the
// default budget (the card less 1 GiB) and two models at once.
var realisticFlags = []string{"--vram", "8GiB", "--budget", "7GiB", "--max-loaded", "2"}

// realisticBudget is --budget above, for the check at every poll.
const realisticBudget = 7 << 30

// realisticWaits allow CPU loads of a 4 GB model on two busy cores (tens of
// seconds each, a restore loads two in a row) and a window that redraws
// slowly while a load holds the CPU.
var realisticWaits = waits{start: 2 * time.Minute, load: 8 * time.Minute, ui: time.Minute, quit: time.Minute}

// defaultHold gives each state of the realistic scenario about fifteen of
// the manager's polls; VRAMKEEPER_E2E_HOLD=3m spreads the six states over
// twenty minutes of the chart's hour (the README's pictures).
const (
	defaultHold = 30 * time.Second
	maxHold     = 15 * time.Minute
)

func holdFrom(s string) (time.Duration, error) {
	if s == "" {
		return defaultHold, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 30s or 5m: %w", err)
	}
	if d < 0 || d > maxHold {
		return 0, fmt.Errorf("%s is outside 0 to %s", d, maxHold)
	}
	return d, nil
}

// pushRealistic generates each model into a file, pushes it to Ollama as a
// blob and creates the model from it, the way `ollama create` does, and
// deletes the file.
func pushRealistic(s *session) {
	t := s.t
	dir := t.TempDir()
	for _, m := range realModels {
		began := time.Now()
		n, err := pushFile(s.srv, dir, m)
		if err != nil {
			t.Fatal(err)
		}
		s.step("ollama has %s (%s, %s) after %s", m.Name, config.FormatBytes(uint64(n)), m.shape(), time.Since(began).Round(time.Second))
	}
}

func (m realModel) shape() string {
	if m.Preset != "" {
		return m.Preset + " " + m.Type
	}
	return m.Spec.Arch + " " + m.Spec.WeightType
}

func (m realModel) spec() (ggufgen.Spec, error) {
	if m.Preset == "" {
		return m.Spec, m.Spec.Validate()
	}
	return ggufgen.Preset(m.Preset, m.Type)
}

// pushTimeout bounds one model's generation, hashing and upload: gigabytes
// written, read and copied on a slow disk.
const pushTimeout = 10 * time.Minute

// pushFile writes m under dir, creates m.Name from it in srv and deletes
// the file; it returns the file's size.
func pushFile(srv *ollamatest.Server, dir string, m realModel) (int64, error) {
	spec, err := m.spec()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	file := filepath.Join(dir, strings.NewReplacer(":", "_", "/", "_").Replace(m.Name)+".gguf")
	n, err := ggufgen.WriteFile(file, spec)
	if err != nil {
		return 0, fmt.Errorf("generating %s: %w", m.Name, err)
	}
	defer os.Remove(file)
	if err := srv.CreateModelFile(ctx, m.Name, file); err != nil {
		return 0, err
	}
	return n, nil
}

// realisticScenario plays an hour of a desktop in a few minutes per state:
// a chat model from the tray, a second from the command line, a code model
// that evicts one of them, the GPU given back and the models restored,
// each state held so the chart shows it; then the screenshots.
func realisticScenario(s *session, hold time.Duration) {
	t := s.t
	s.hold(hold, nil)

	// A chat model through the tray.
	s.click("Load best for", "chat")
	ps := s.waitModels("a chat model runs", func(ps []api.ProcessModelResponse) bool { return len(ps) == 1 })
	chat := ps[0].Name
	if m, ok := findReal(chat); !ok || !m.Chat {
		t.Fatalf("Load best for chat loaded %s, want one of the chat models", chat)
	}
	s.step("ollama runs %s (%s)", chat, config.FormatBytes(uint64(ps[0].Size)))
	s.waitListed(chat)
	s.waitIconChanged()
	s.waitWindow()
	s.waitTab(0)
	s.hold(hold, []string{chat})

	// The other chat model from the command line, beside it.
	var second string
	for _, m := range realModels {
		if m.Chat && m.Name != chat {
			second = m.Name
			break
		}
	}
	out, err := s.app.cli(s.w.load, "load", second)
	if err != nil {
		t.Fatal(err)
	}
	s.step("vramkeeper load %s: %s", second, strings.TrimSpace(out))
	s.waitModels("both chat models run", hasExactly(chat, second))
	s.waitListed(chat, second)
	s.hold(hold, []string{chat, second})

	// Code through the tray: with two models at most, the least useful
	// chat model makes room.
	var coder string
	for _, m := range realModels {
		if m.Code {
			coder = m.Name
		}
	}
	s.click("Load best for", "code_generation")
	ps = s.waitModels(coder+" runs beside one chat model", func(ps []api.ProcessModelResponse) bool {
		names := psNames(ps)
		return len(names) == 2 && slices.Contains(names, coder)
	})
	kept := slices.DeleteFunc(psNames(ps), func(n string) bool { return n == coder })[0]
	evicted := chat
	if kept == chat {
		evicted = second
	}
	s.waitEvictionNote(evicted)
	s.waitListed(coder, kept)
	loaded := []string{coder, kept}
	s.hold(hold, loaded)

	// Give the GPU back from the tray: Ollama runs nothing, the menu offers
	// the restore of both.
	ctxs := contexts(s.srv.Running(t))
	s.click("Give GPU back")
	s.waitModels("Ollama runs nothing after Give GPU back", hasExactly())
	for _, m := range loaded {
		s.waitNote("gave the gpu back", m)
	}
	s.waitNoneListed()
	s.hold(hold, []string{})

	// Restore from the tray: the same models at the same context lengths.
	s.click("Restore models")
	ps = s.waitModels("both models run again after Restore models", hasExactly(loaded...))
	if got := contexts(ps); !maps.Equal(got, ctxs) {
		t.Errorf("restored at context lengths %v, were %v", got, ctxs)
	}
	for _, m := range loaded {
		s.waitNote("restored", m)
	}
	s.waitListed(loaded...)
	s.hold(hold, loaded)

	s.pictures()
}

// findReal returns the realistic model called name.
func findReal(name string) (realModel, bool) {
	i := slices.IndexFunc(realModels, func(m realModel) bool { return m.Name == name })
	if i < 0 {
		return realModel{}, false
	}
	return realModels[i], true
}

func psNames(ps []api.ProcessModelResponse) []string {
	var names []string
	for _, m := range ps {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names
}

func contexts(ps []api.ProcessModelResponse) map[string]int {
	out := map[string]int{}
	for _, m := range ps {
		out[m.Name] = m.ContextLength
	}
	return out
}

// hasExactly is true when Ollama runs exactly the named models.
func hasExactly(names ...string) func([]api.ProcessModelResponse) bool {
	want := slices.Sorted(slices.Values(names))
	return func(ps []api.ProcessModelResponse) bool { return slices.Equal(psNames(ps), want) }
}

// waitModels waits for /api/ps to satisfy cond and returns it.
func (s *session) waitModels(what string, cond func([]api.ProcessModelResponse) bool) []api.ProcessModelResponse {
	s.t.Helper()
	var ps []api.ProcessModelResponse
	testwait.Until(s.t, what, s.w.load, func() (bool, string) {
		ps = s.srv.Running(s.t)
		return cond(ps), fmt.Sprint(psNames(ps))
	})
	s.step("%s: %v", what, psNames(ps))
	return ps
}

// hold keeps the state for d so that the chart shows it, checking at every
// poll of the manager that Ollama runs exactly want (nothing unloaded or
// reloaded behind the user's back) within the budget. want nil skips the
// check of names.
func (s *session) hold(d time.Duration, want []string) {
	s.t.Helper()
	if d == 0 {
		return
	}
	s.step("holding %s for %s", want, d)
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		ps := s.srv.Running(s.t)
		var sum uint64
		for _, m := range ps {
			sum += uint64(m.Size)
		}
		if sum > realisticBudget {
			s.t.Fatalf("Ollama runs %v, %s together, over the %s budget", psNames(ps), config.FormatBytes(sum), config.FormatBytes(realisticBudget))
		}
		if want != nil && !slices.Equal(psNames(ps), slices.Sorted(slices.Values(want))) {
			s.t.Fatalf("while holding, Ollama runs %v, want %v", psNames(ps), want)
		}
		time.Sleep(min(2*time.Second, time.Until(end))) // the hold itself: time for the chart, checked every 2 s
	}
}
