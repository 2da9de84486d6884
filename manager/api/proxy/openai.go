package proxy

// The OpenAI-compatible endpoints are translated here rather than passed to
// Ollama's /v1: an OpenAI request has no options or keep_alive, so Ollama
// would run it with its default num_ctx (4096, or more on big cards) and a
// 5-minute keep_alive. Where the manager loaded the model with another
// context length, Ollama would then reload it behind the manager's back (at
// another size, maybe over the budget), and unload it on its own after five
// idle minutes. So each request is converted with Ollama's own openai
// package (the code Ollama's /v1 middleware runs), sent to the native
// endpoint with the manager's num_ctx and keep_alive -1, and the native
// answer converted back with the same package, chunk by chunk.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/openai"

	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

func (p *Proxy) openAIFail(w http.ResponseWriter, r *http.Request, err error) {
	p.failAs(w, r, writeOpenAIError, err)
}

func (p *Proxy) handleOpenAIChat(w http.ResponseWriter, r *http.Request) {
	req, native, h, ok := translate(p, w, r, openAIDialect, func(req *openai.ChatCompletionRequest) (string, *api.ChatRequest, error) {
		switch {
		case req.Model == "":
			return "", nil, wire.BadRequestf("model is required")
		case len(req.Messages) == 0:
			return "", nil, wire.BadRequestf("[] is too short - 'messages'")
		}
		n, err := openai.FromChatRequest(*req)
		return req.Model, n, badRequest(err)
	}, pinChat)
	if !ok {
		return
	}
	defer h.release()

	id := fmt.Sprintf("chatcmpl-%d", rand.IntN(999))
	toolCallSent := false
	p.relay(w, r, openAIDialect, "/api/chat", native, req.Stream, func(raw []byte) ([]any, bool, error) {
		var cr api.ChatResponse
		if err := json.Unmarshal(raw, &cr); err != nil {
			return nil, false, err
		}
		if !req.Stream {
			return []any{openai.ToChatCompletion(id, cr)}, cr.Done, nil
		}
		c := openai.ToChunk(id, cr, toolCallSent)
		if len(c.Choices) > 0 && len(c.Choices[0].Delta.ToolCalls) > 0 {
			toolCallSent = true
		}
		out := []any{c}
		if cr.Done && req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			u := openai.ToUsage(cr)
			c.Usage, c.Choices = &u, []openai.ChunkChoice{}
			out = append(out, c)
		}
		return out, cr.Done, nil
	})
}

func (p *Proxy) handleOpenAICompletion(w http.ResponseWriter, r *http.Request) {
	req, native, h, ok := translate(p, w, r, openAIDialect, func(req *openai.CompletionRequest) (string, *api.GenerateRequest, error) {
		if req.Model == "" {
			return "", nil, wire.BadRequestf("model is required")
		}
		n, err := openai.FromCompleteRequest(*req)
		return req.Model, &n, badRequest(err)
	}, pinGenerate)
	if !ok {
		return
	}
	defer h.release()

	id := fmt.Sprintf("cmpl-%d", rand.IntN(999))
	p.relay(w, r, openAIDialect, "/api/generate", native, req.Stream, func(raw []byte) ([]any, bool, error) {
		var gr api.GenerateResponse
		if err := json.Unmarshal(raw, &gr); err != nil {
			return nil, false, err
		}
		if !req.Stream {
			return []any{openai.ToCompletion(id, gr)}, gr.Done, nil
		}
		c := openai.ToCompleteChunk(id, gr)
		usage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
		if usage {
			c.Usage = &openai.Usage{}
		}
		out := []any{c}
		if gr.Done && usage {
			u := openai.ToUsageGenerate(gr)
			c.Usage, c.Choices = &u, []openai.CompleteChunkChoice{}
			out = append(out, c)
		}
		return out, gr.Done, nil
	})
}

func (p *Proxy) handleOpenAIEmbed(w http.ResponseWriter, r *http.Request) {
	req, native, h, ok := translate(p, w, r, openAIDialect, func(req *openai.EmbedRequest) (string, *api.EmbedRequest, error) {
		// The same checks as Ollama's middleware, so answers match.
		switch {
		case req.Model == "":
			return "", nil, wire.BadRequestf("model is required")
		case req.EncodingFormat != "" && !strings.EqualFold(req.EncodingFormat, "float") && !strings.EqualFold(req.EncodingFormat, "base64"):
			return "", nil, wire.BadRequestf("Invalid value for 'encoding_format' = %s. Supported values: ['float', 'base64'].", req.EncodingFormat)
		case req.Input == nil:
			return "", nil, wire.BadRequestf("invalid input")
		}
		if v, ok := req.Input.([]any); ok && len(v) == 0 {
			return "", nil, wire.BadRequestf("invalid input")
		}
		if req.Input == "" {
			req.Input = []string{""}
		}
		return req.Model, &api.EmbedRequest{Input: req.Input, Dimensions: req.Dimensions}, nil
	}, pinEmbed)
	if !ok {
		return
	}
	defer h.release()
	p.relay(w, r, openAIDialect, "/api/embed", native, false, func(raw []byte) ([]any, bool, error) {
		var er api.EmbedResponse
		if err := json.Unmarshal(raw, &er); err != nil {
			return nil, false, err
		}
		return []any{openai.ToEmbeddingList(h.model, er, req.EncodingFormat)}, true, nil
	})
}

// badRequest marks a conversion's error as the client's.
func badRequest(err error) error {
	if err == nil {
		return nil
	}
	return wire.BadRequest{Err: err}
}

// handleOpenAIModels lists the installed models and the aliases.
func (p *Proxy) handleOpenAIModels(w http.ResponseWriter, r *http.Request) {
	var list api.ListResponse
	resp, err := p.upstreamGet(r.Context(), "/api/tags", &list)
	if err != nil {
		p.openAIFail(w, r, err)
		return
	}
	if resp != nil {
		defer resp.Body.Close()
		writeOpenAIError(w, resp.StatusCode, upstreamErrorMessage(resp))
		return
	}
	out := openai.ToListCompletion(list)
	now := time.Now().Unix()
	for _, a := range p.aliases() {
		out.Data = append(out.Data, aliasModel(a.Name, now))
	}
	if out.Data == nil {
		out.Data = []openai.Model{}
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

func aliasModel(name string, created int64) openai.Model {
	return openai.Model{Id: name, Object: "model", Created: created, OwnedBy: "vramkeeper"}
}

// handleOpenAIModel answers for an alias itself and passes real models on.
func (p *Proxy) handleOpenAIModel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model")
	if _, _, ok := ParseAlias(name); ok && !p.isModel(name) {
		if _, err := p.peek(name); err != nil {
			p.openAIFail(w, r, err)
			return
		}
		wire.WriteJSON(w, http.StatusOK, aliasModel(name, time.Now().Unix()))
		return
	}
	p.rp.ServeHTTP(w, r)
}
