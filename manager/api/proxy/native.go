package proxy

// The native endpoints' bodies are rewritten so that what Ollama reads
// carries the manager's model, keep_alive and load options, whatever the
// client wrote. "What Ollama reads" is decided the way Ollama decides it:
// encoding/json into the api package's request structs (gin's
// ShouldBindJSON), which matches keys to fields case-insensitively (with
// Unicode folding: "\u212Aeep_alive" is keep_alive), lets the last of
// duplicate keys win for scalars and merges duplicate maps ("options" and
// "Options" both land in one map), and reads only the first JSON value.
//
// So the body is read twice: once into the endpoint's struct, exactly as
// Ollama will, for the values; once as its list of top-level members, in
// order and duplicates kept, for everything else. Every member that
// encoding/json would put into model, keep_alive or options goes; the rest
// is forwarded byte for byte (fields newer than the pinned api package
// included), followed by the manager's three.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// runnerOptions are the options Ollama compares to decide whether a loaded
// model must be reloaded: the json names of api.Runner's fields, read
// from the struct so that a newer api package cannot add one unnoticed. A
// request that sets one differently from the manager's load makes Ollama
// reload the model behind the manager's back, possibly larger, so the
// proxy drops them all and sets num_ctx to the manager's value.
var runnerOptions = jsonNames(reflect.TypeFor[api.Runner]())

// jsonNames lists the json names encoding/json uses for t's fields.
func jsonNames(t reflect.Type) []string {
	var out []string
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// isRunnerOption reports whether an options key is, or may one day be read
// as, a load option. Ollama matches option keys exactly today; any case
// is dropped in case a newer server folds them as encoding/json does.
func isRunnerOption(key string) bool {
	for _, k := range runnerOptions {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// pinOptions applies the manager's load options to a request's options:
// every load option removed, num_ctx set to the manager's (when it has
// one). The OpenAI translations and the native rewrite both use it.
func pinOptions(opts map[string]any, h held) map[string]any {
	if opts == nil {
		opts = map[string]any{}
	}
	for k := range opts {
		if isRunnerOption(k) {
			delete(opts, k)
		}
	}
	if h.numCtx > 0 {
		opts["num_ctx"] = h.numCtx
	}
	return opts
}

// pinnedFields are the json names of the request fields the manager sets.
var pinnedFields = []string{"model", "keep_alive", "options"}

// member is one top-level key of a JSON object and its value as sent.
type member struct {
	key string // decoded, as encoding/json compares it
	raw json.RawMessage
}

// nativeRequest is a native request body as Ollama will read it: the
// values the manager cares about, and every member as it came.
type nativeRequest struct {
	model   string
	options map[string]any
	// unload is Ollama's unload idiom: keep_alive 0 and nothing to do
	// (an empty prompt on /api/generate, no messages on /api/chat).
	unload  bool
	members []member
}

// parseNative reads the body of a native inference endpoint (path) the
// way Ollama will. Nothing of b is copied that need not be: a body of tens
// of megabytes (images) is read into the request struct once, and its
// members are slices of b.
func parseNative(path string, b []byte) (nativeRequest, error) {
	var req nativeRequest
	var keepAlive *api.Duration
	var empty bool
	first, err := firstValue(b)
	if errors.Is(err, io.EOF) {
		return req, wire.BadRequestf("missing request body")
	}
	if err != nil {
		return req, wire.BadRequestf("malformed JSON body: %w", err)
	}
	switch path {
	case "/api/generate":
		var r api.GenerateRequest
		err = json.Unmarshal(first, &r)
		req.model, keepAlive, req.options, empty = r.Model, r.KeepAlive, r.Options, r.Prompt == ""
	case "/api/chat":
		var r api.ChatRequest
		err = json.Unmarshal(first, &r)
		req.model, keepAlive, req.options, empty = r.Model, r.KeepAlive, r.Options, len(r.Messages) == 0
	case "/api/embed":
		var r api.EmbedRequest
		err = json.Unmarshal(first, &r)
		req.model, req.options = r.Model, r.Options
	case "/api/embeddings":
		var r api.EmbeddingRequest
		err = json.Unmarshal(first, &r)
		req.model, req.options = r.Model, r.Options
	default:
		return req, fmt.Errorf("no native rewrite for %s", path)
	}
	if err != nil {
		return req, wire.BadRequestf("malformed JSON body: %w", err)
	}
	if req.model == "" {
		return req, wire.BadRequestf("model is required")
	}
	req.unload = (path == "/api/generate" || path == "/api/chat") && empty &&
		keepAlive != nil && keepAlive.Duration == 0
	if req.members, err = topMembers(first); err != nil {
		return req, wire.BadRequestf("malformed JSON body: %w", err)
	}
	return req, nil
}

// decodeFirst decodes the first JSON value of b into v, as gin's
// ShouldBindJSON does (trailing data is not read).
func decodeFirst(b []byte, v any) error {
	first, err := firstValue(b)
	if err != nil {
		return err
	}
	return json.Unmarshal(first, v)
}

// firstValue is the first JSON value of b, as a json.Decoder reads it
// (io.EOF when there is none): b itself when it holds one value and
// nothing else, as bodies do, without a copy; else a copy of the first.
func firstValue(b []byte) ([]byte, error) {
	if json.Valid(b) {
		return b, nil
	}
	var raw json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// topMembers lists the members of the JSON object b (one valid JSON value:
// firstValue's), in order, duplicates kept, each value a slice of b; a
// null is an empty request, as encoding/json reads it.
func topMembers(b []byte) ([]member, error) {
	i := skipSpace(b, 0)
	if i < len(b) && b[i] == 'n' {
		return nil, nil
	}
	if i >= len(b) || b[i] != '{' {
		return nil, errors.New("want a JSON object")
	}
	var out []member
	for i = skipSpace(b, i+1); b[i] != '}'; i = skipSpace(b, i) {
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		end := valueEnd(b, i) // the key, a string
		var key string
		if err := json.Unmarshal(b[i:end], &key); err != nil {
			return nil, err
		}
		i = skipSpace(b, skipSpace(b, end)+1) // past the ':'
		end = valueEnd(b, i)
		out = append(out, member{key: key, raw: b[i:end]})
		i = end
	}
	return out, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd is the index just past the JSON value that starts at b[i],
// which is valid JSON.
func valueEnd(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i // the end of the object holding a scalar
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i // the end of a number or a literal
			}
		}
	}
	return i
}

// pinned reports whether encoding/json would decode a member with this
// key into one of the fields the manager sets (exact or folded match).
func pinned(key string) bool {
	for _, f := range pinnedFields {
		if strings.EqualFold(key, f) {
			return true
		}
	}
	return false
}

// pin returns the body to forward for the held model, as pieces of the
// client's body and a tail, never copied whole: the client's members but
// model, keep_alive and options, then the held model's real name,
// keep_alive -1 (Ollama never unloads it on its own) and the client's
// options with the manager's load options.
func (req nativeRequest) pin(h held) (net.Buffers, error) {
	out := net.Buffers{[]byte("{")}
	for _, m := range req.members {
		if pinned(m.key) {
			continue
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		out = append(out, append(k, ':'), m.raw, []byte(","))
	}
	tail, err := json.Marshal(struct {
		Model     string         `json:"model"`
		KeepAlive int            `json:"keep_alive"`
		Options   map[string]any `json:"options"`
	}{h.model, -1, pinOptions(req.options, h)})
	if err != nil {
		return nil, fmt.Errorf("encoding the request for %s: %w", h.model, err)
	}
	return append(out, tail[1:]), nil // without its '{'
}

// handleNative serves /api/generate, /api/chat, /api/embed and
// /api/embeddings: the model is loaded and held for the whole response,
// which streams through the reverse proxy chunk by chunk.
func (p *Proxy) handleNative(w http.ResponseWriter, r *http.Request) {
	b, release, err := p.opt.Gate.ReadBody(w, r, p.opt.MaxBody)
	defer release()
	if err != nil {
		p.ollamaFail(w, r, err)
		return
	}
	req, err := parseNative(r.URL.Path, b)
	if err != nil {
		p.ollamaFail(w, r, err)
		return
	}
	if req.unload {
		p.unloadByRequest(w, r, req.model)
		return
	}
	h, err := p.acquire(r.Context(), req.model, "request on "+r.URL.Path)
	if err != nil {
		p.ollamaFail(w, r, err)
		return
	}
	// The proxy returns once the upstream body is copied to the client (or
	// either side failed); only then may the model be evicted.
	defer h.release()
	body, err := req.pin(h)
	if err != nil {
		p.ollamaFail(w, r, err)
		return
	}
	p.forward(w, r, body)
}

// forward proxies r with body in place of its own.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, body net.Buffers) {
	out := r.Clone(r.Context())
	n := 0
	for _, b := range body {
		n += len(b)
	}
	out.Body = io.NopCloser(&body)
	out.ContentLength = int64(n)
	out.GetBody = nil
	p.rp.ServeHTTP(w, out)
}

// unloadByRequest answers Ollama's unload idiom through the manager, so
// its state stays true, with the answer Ollama would give.
func (p *Proxy) unloadByRequest(w http.ResponseWriter, r *http.Request, name string) {
	if _, _, ok := ParseAlias(name); ok && !p.isModel(name) {
		real, err := p.peek(name)
		if err != nil {
			p.ollamaFail(w, r, err)
			return
		}
		name = real
	}
	if err := p.k.Unload(r.Context(), name); err != nil {
		p.ollamaFail(w, r, err)
		return
	}
	resp := map[string]any{
		"model": p.canonical(name), "created_at": time.Now().UTC(),
		"done": true, "done_reason": "unload",
	}
	if r.URL.Path == "/api/chat" {
		resp["message"] = map[string]string{"role": "assistant", "content": ""}
	} else {
		resp["response"] = ""
	}
	wire.WriteJSON(w, http.StatusOK, resp)
}
