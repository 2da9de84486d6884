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
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/openai"

	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

func (p *Proxy) handleResponses(w http.ResponseWriter, r *http.Request) {
	f := dialect{writeError: writeOpenAIError}
	req, native, h, ok := translate(p, w, r, f, func(req *openai.ResponsesRequest) (string, *api.ChatRequest, error) {
		if req.Model == "" {
			return "", nil, wire.BadRequestf("model is required")
		}
		n, err := openai.FromResponsesRequest(*req)
		if err != nil {
			return "", nil, badRequest(err)
		}
		stream := req.Stream != nil && *req.Stream
		n.Stream = &stream
		return req.Model, n, nil
	}, pinChat)
	if !ok {
		return
	}
	defer h.release()
	stream := *native.Stream

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

// decodeChatResponse decodes one object of Ollama's /api/chat answer.
func decodeChatResponse(raw []byte) (api.ChatResponse, error) {
	var cr api.ChatResponse
	err := json.Unmarshal(raw, &cr)
	return cr, err
}
