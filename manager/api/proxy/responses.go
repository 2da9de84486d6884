package proxy

// OpenAI's Responses API (POST /v1/responses, what Codex-style agents
// speak) is translated here like chat completions (see openai.go), and for
// the same reason: Ollama's own /v1/responses sends no options or
// keep_alive, so it would reload the model at its default context length
// and unload it after five idle minutes. The request is converted with
// Ollama's openai package (the code its ResponsesMiddleware runs), sent to
// /api/chat with the manager's runner options and keep_alive -1, and the
// answer converted back with the same package, event by event.

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/openai"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// zstdWindow bounds the memory a compressed body may make the decoder take
// (Ollama's middleware uses the same bound).
const zstdWindow = 8 << 20

func (p *Proxy) handleResponses(w http.ResponseWriter, r *http.Request) {
	var req openai.ResponsesRequest
	if err := p.decodeResponses(w, r, &req); err != nil {
		p.openAIFail(w, r, err)
		return
	}
	if req.Model == "" {
		p.openAIFail(w, r, wire.BadRequestf("model is required"))
		return
	}
	native, err := openai.FromResponsesRequest(req)
	if err != nil {
		p.openAIFail(w, r, wire.BadRequest{Err: err})
		return
	}
	stream := req.Stream != nil && *req.Stream
	native.Stream = &stream
	f := dialect{writeError: writeOpenAIError}
	h, ok := p.holdChat(w, r, f, req.Model, native)
	if !ok {
		return
	}
	defer h.release()

	// The answer names the model that answered, as chat completions do: an
	// alias shows what it resolved to.
	responseID := fmt.Sprintf("resp_%d", rand.IntN(999999))
	itemID := fmt.Sprintf("msg_%d", rand.IntN(999999))
	conv := openai.NewResponsesStreamConverter(responseID, itemID, h.model, req)
	seq := 0 // the next event's sequence_number, for an error event
	f.streamError = func(status int, msg string) any {
		return sseEvent{"error", map[string]any{
			"type": "error", "code": "server_error", "message": msg, "param": nil, "sequence_number": seq,
		}}
	}
	p.relay(w, r, f, "/api/chat", native, stream, func(raw []byte) ([]any, bool, error) {
		cr, err := decodeChatResponse(raw)
		if err != nil {
			return nil, false, err
		}
		if !stream {
			resp := openai.ToResponse(h.model, responseID, itemID, cr, req)
			completed := time.Now().Unix()
			resp.CompletedAt = &completed
			return []any{resp}, cr.Done, nil
		}
		var out []any
		for _, e := range conv.Process(cr) {
			if d, ok := e.Data.(map[string]any); ok {
				if n, ok := d["sequence_number"].(int); ok {
					seq = n + 1
				}
			}
			out = append(out, sseEvent{e.Event, e.Data})
		}
		return out, cr.Done, nil
	})
}

// holdChat loads and holds the model a translated chat request names
// (within the budget, aliases resolved) and pins the request to it: its
// real name, keep_alive -1 and the manager's runner options. On failure it
// answers in f's shape and ok is false; otherwise the caller releases h.
func (p *Proxy) holdChat(w http.ResponseWriter, r *http.Request, f dialect, requested string, native *api.ChatRequest) (h held, ok bool) {
	h, err := p.acquire(r.Context(), requested, "request on "+r.URL.Path)
	if err != nil {
		p.failAs(w, r, f.writeError, err)
		return held{}, false
	}
	native.Model, native.KeepAlive, native.Options = h.model, &keepForever, pinOptions(native.Options, h)
	return h, true
}

// decodeResponses reads a Responses request, zstd-compressed or not: Codex
// compresses its bodies, and Ollama accepts both. MaxBody bounds the body
// as it decompresses.
func (p *Proxy) decodeResponses(w http.ResponseWriter, r *http.Request, v any) error {
	if r.Header.Get("Content-Encoding") == "zstd" {
		dec, err := zstd.NewReader(r.Body, zstd.WithDecoderMaxMemory(zstdWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return wire.BadRequestf("failed to decompress zstd body: %w", err)
		}
		defer dec.Close()
		r.Body = io.NopCloser(dec)
	}
	return p.decodeOpenAI(w, r, v)
}

// decodeChatResponse decodes one object of Ollama's /api/chat answer.
func decodeChatResponse(raw []byte) (api.ChatResponse, error) {
	var cr api.ChatResponse
	err := json.Unmarshal(raw, &cr)
	return cr, err
}
