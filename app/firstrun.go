package app

import (
	"net"
	"net/url"
	"strings"

	"github.com/vramkeeper/vramkeeper/manager"
)

// What the window says on a first run, state by state: each says what is
// wrong in a few words and what to do next in one sentence; the technical
// cause goes in a detail line under it. Pure functions of the snapshot and
// of what the tray can do, tested by tables.

// OllamaDownload is where Ollama is installed from.
const OllamaDownload = "https://ollama.com/download"

// OllamaHelp says what to do while Ollama does not answer.
type OllamaHelp struct {
	// Text is the banner: what is wrong and what to do next.
	Text string
	// Detail is the technical cause ("dial tcp ...: connection refused").
	Detail string
	// Start offers "Start Ollama" (the tray starts `ollama serve`);
	// Install offers the download page.
	Start, Install bool
}

// OllamaHelpFor is the banner while Ollama does not answer at rawURL. bin
// is the `ollama` the tray would start ("" when none is installed);
// canStart says the tray can start it; asked says it was just asked to.
func OllamaHelpFor(s manager.Snapshot, rawURL, bin string, canStart, asked bool) OllamaHelp {
	addr, local := ollamaAddr(rawURL)
	h := OllamaHelp{Detail: s.RuntimeErr}
	switch {
	case !local:
		h.Text = "Ollama does not answer at " + addr + ". Start it on that machine, or point VRAM Keeper at another server in Settings (Ollama URL)."
	case asked:
		h.Text = "Ollama is not running at " + addr + ". Starting it; this takes a few seconds."
	case bin != "" && canStart:
		h.Text = "Ollama is not running at " + addr + ". Start it with the button, or run `ollama serve` in a terminal."
		h.Start = true
	case bin != "":
		h.Text = "Ollama is not running at " + addr + ". Start it with `ollama serve` in a terminal."
	default:
		h.Text = "Ollama is not running at " + addr + ", and it is not installed. Install it from ollama.com/download, then start it with `ollama serve`."
		h.Install = true
	}
	return h
}

// ollamaAddr is the host:port of an Ollama URL, and whether it is this
// machine (only there can the tray start it).
func ollamaAddr(rawURL string) (addr string, local bool) {
	if rawURL == "" {
		return "the configured address", true
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return strings.TrimPrefix(rawURL, "http://"), true
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return u.Host, true
	}
	ip := net.ParseIP(host)
	return u.Host, ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// canGiveBack says whether "Give GPU back" would do anything: something
// is loaded or loading.
func canGiveBack(s manager.Snapshot) bool {
	return s.OllamaUp && (s.Loading != "" || len(s.LoadedModels()) > 0)
}
