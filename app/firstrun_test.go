package app

import (
	"testing"

	"github.com/vramkeeper/vramkeeper/manager"
)

// Each state of a missing Ollama says what to do next, and offers the
// button that does it: start it where the tray can, the download page
// where it is not installed, nothing the tray cannot do for a remote one.
func TestOllamaHelpFor(t *testing.T) {
	down := manager.Snapshot{RuntimeErr: "dial tcp 127.0.0.1:11801: connect: connection refused"}
	for _, tc := range []struct {
		name, url, bin  string
		canStart, asked bool
		want            OllamaHelp
	}{
		{"installed", "http://127.0.0.1:11801", "/usr/bin/ollama", true, false, OllamaHelp{
			Text: "Ollama is not running at 127.0.0.1:11801. Start it with the button, or run `ollama serve` in a terminal.", Start: true}},
		{"starting", "http://127.0.0.1:11801", "/usr/bin/ollama", true, true, OllamaHelp{
			Text: "Ollama is not running at 127.0.0.1:11801. Starting it; this takes a few seconds."}},
		{"installed, no tray to start it", "http://localhost:11434", "/usr/bin/ollama", false, false, OllamaHelp{
			Text: "Ollama is not running at localhost:11434. Start it with `ollama serve` in a terminal."}},
		{"not installed", "http://127.0.0.1:11801", "", true, false, OllamaHelp{
			Text:    "Ollama is not running at 127.0.0.1:11801, and it is not installed. Install it from ollama.com/download, then start it with `ollama serve`.",
			Install: true}},
		{"another machine", "http://10.0.0.5:11434", "/usr/bin/ollama", true, false, OllamaHelp{
			Text: "Ollama does not answer at 10.0.0.5:11434. Start it on that machine, or point VRAM Keeper at another server in Settings (Ollama URL)."}},
	} {
		tc.want.Detail = down.RuntimeErr
		if got := OllamaHelpFor(down, tc.url, tc.bin, tc.canStart, tc.asked); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

// Give GPU back would do nothing with nothing on the card.
func TestCanGiveBack(t *testing.T) {
	loaded := manager.Snapshot{OllamaUp: true, Models: []manager.ModelView{{Name: "a", Loaded: true}}}
	for _, tc := range []struct {
		name string
		s    manager.Snapshot
		want bool
	}{
		{"nothing loaded", manager.Snapshot{OllamaUp: true, Models: []manager.ModelView{{Name: "a"}}}, false},
		{"one loaded", loaded, true},
		{"one loading", manager.Snapshot{OllamaUp: true, Loading: "a"}, true},
		{"Ollama away", manager.Snapshot{Models: loaded.Models}, false},
	} {
		if got := canGiveBack(tc.s); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
