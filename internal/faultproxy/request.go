package faultproxy

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/types/model"
)

// Intent is what a request asks of Ollama, told from its path and body.
type Intent int

const (
	AnyIntent Intent = iota // matches every request (in a Match)
	Load                    // a model endpoint with nothing to generate: Ollama loads the model
	Unload                  // the same with keep_alive 0: Ollama unloads it
	Infer                   // a generation, chat or embedding with content
	Other                   // everything else: ps, tags, show, version, blobs
)

func (i Intent) String() string {
	switch i {
	case AnyIntent:
		return "any"
	case Load:
		return "load"
	case Unload:
		return "unload"
	case Infer:
		return "infer"
	case Other:
		return "other"
	}
	return "intent(?)"
}

// modelPaths are Ollama's endpoints that run a model; a request to one with
// nothing to run only loads or unloads it (the idiom manager/ollama uses).
var modelPaths = map[string]bool{"/api/generate": true, "/api/chat": true, "/api/embed": true, "/api/embeddings": true}

// payload holds the body fields that classify a request. Content fields
// stay raw: only whether they are empty matters.
type payload struct {
	Model     *string         `json:"model"`
	Name      *string         `json:"name"`
	KeepAlive json.RawMessage `json:"keep_alive"`
	Prompt    json.RawMessage `json:"prompt"`
	Messages  json.RawMessage `json:"messages"`
	Input     json.RawMessage `json:"input"`
}

// classify names the model a request is for and what it asks. A body that
// is not a JSON object names no model; it is forwarded all the same, as
// Ollama is the one to refuse it.
func classify(path string, body []byte) (name string, in Intent) {
	var p payload
	_ = json.Unmarshal(body, &p) // a broken body simply matches no model
	switch {
	case p.Model != nil && *p.Model != "":
		name = *p.Model
	case p.Name != nil:
		name = *p.Name
	}
	switch {
	case strings.HasPrefix(path, "/v1/"):
		return name, Infer
	case !modelPaths[path]:
		return name, Other
	case !empty(p.Prompt) || !empty(p.Messages) || !empty(p.Input):
		return name, Infer
	case keepsZero(p.KeepAlive):
		return name, Unload
	}
	return name, Load
}

func empty(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", `""`, "[]":
		return true
	}
	return false
}

// keepsZero reports whether keep_alive is zero, read as Ollama reads it
// (a number of seconds or a duration string).
func keepsZero(raw json.RawMessage) bool {
	if empty(raw) {
		return false
	}
	var d api.Duration
	return json.Unmarshal(raw, &d) == nil && d.Duration == 0
}

// sameModel compares names as Ollama does: "tiny" is "tiny:latest",
// case-insensitively.
func sameModel(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	na, nb := model.ParseName(a), model.ParseName(b)
	return na.IsValid() && nb.IsValid() && na.EqualFold(nb)
}
