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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/openai"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

func (p *Proxy) openAIFail(w http.ResponseWriter, r *http.Request, err error) {
	p.failAs(w, r, writeOpenAIError, err)
}

// decodeOpenAI reads an OpenAI request body.
func (p *Proxy) decodeOpenAI(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := wire.ReadBody(w, r, p.opt.MaxBody)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return wire.BadRequestf("malformed JSON body: %w", err)
	}
	return nil
}

var keepForever = api.Duration{Duration: -1}

func (p *Proxy) handleOpenAIChat(w http.ResponseWriter, r *http.Request) {
	var req openai.ChatCompletionRequest
	if err := p.decodeOpenAI(w, r, &req); err != nil {
		p.openAIFail(w, r, err)
		return
	}
	if req.Model == "" {
		p.openAIFail(w, r, wire.BadRequestf("model is required"))
		return
	}
	if len(req.Messages) == 0 {
		p.openAIFail(w, r, wire.BadRequestf("[] is too short - 'messages'"))
		return
	}
	native, err := openai.FromChatRequest(req)
	if err != nil {
		p.openAIFail(w, r, wire.BadRequest{Err: err})
		return
	}
	h, err := p.acquire(r.Context(), req.Model, "request on "+r.URL.Path)
	if err != nil {
		p.openAIFail(w, r, err)
		return
	}
	defer h.release()
	native.Model, native.KeepAlive, native.Options = h.model, &keepForever, pinOptions(native.Options, h)

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
	var req openai.CompletionRequest
	if err := p.decodeOpenAI(w, r, &req); err != nil {
		p.openAIFail(w, r, err)
		return
	}
	if req.Model == "" {
		p.openAIFail(w, r, wire.BadRequestf("model is required"))
		return
	}
	native, err := openai.FromCompleteRequest(req)
	if err != nil {
		p.openAIFail(w, r, wire.BadRequest{Err: err})
		return
	}
	h, err := p.acquire(r.Context(), req.Model, "request on "+r.URL.Path)
	if err != nil {
		p.openAIFail(w, r, err)
		return
	}
	defer h.release()
	native.Model, native.KeepAlive, native.Options = h.model, &keepForever, pinOptions(native.Options, h)

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
	var req openai.EmbedRequest
	if err := p.decodeOpenAI(w, r, &req); err != nil {
		p.openAIFail(w, r, err)
		return
	}
	// The same checks as Ollama's middleware, so answers match.
	switch {
	case req.Model == "":
		p.openAIFail(w, r, wire.BadRequestf("model is required"))
		return
	case req.EncodingFormat != "" && !strings.EqualFold(req.EncodingFormat, "float") && !strings.EqualFold(req.EncodingFormat, "base64"):
		p.openAIFail(w, r, wire.BadRequestf("Invalid value for 'encoding_format' = %s. Supported values: ['float', 'base64'].", req.EncodingFormat))
		return
	case req.Input == nil:
		p.openAIFail(w, r, wire.BadRequestf("invalid input"))
		return
	}
	if v, ok := req.Input.([]any); ok && len(v) == 0 {
		p.openAIFail(w, r, wire.BadRequestf("invalid input"))
		return
	}
	if req.Input == "" {
		req.Input = []string{""}
	}
	h, err := p.acquire(r.Context(), req.Model, "request on "+r.URL.Path)
	if err != nil {
		p.openAIFail(w, r, err)
		return
	}
	defer h.release()
	native := &api.EmbedRequest{
		Model: h.model, Input: req.Input, Dimensions: req.Dimensions,
		KeepAlive: &keepForever, Options: pinOptions(nil, h),
	}
	p.relay(w, r, openAIDialect, "/api/embed", native, false, func(raw []byte) ([]any, bool, error) {
		var er api.EmbedResponse
		if err := json.Unmarshal(raw, &er); err != nil {
			return nil, false, err
		}
		return []any{openai.ToEmbeddingList(h.model, er, req.EncodingFormat)}, true, nil
	})
}

// relay sends a native request to Ollama and writes the translated answer
// framed as f: each JSON object Ollama sends is converted by each; with
// stream, every converted value is one Server-Sent Event, flushed at once,
// and the stream ends with f.end; without, the one value is the body.
func (p *Proxy) relay(w http.ResponseWriter, r *http.Request, f dialect, path string, native any, stream bool,
	each func(raw []byte) (out []any, done bool, err error)) {
	body, err := json.Marshal(native)
	if err != nil {
		p.failAs(w, r, f.writeError, err)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, p.upstream.JoinPath(path).String(), bytes.NewReader(body))
	if err != nil {
		p.failAs(w, r, f.writeError, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		p.failAs(w, r, f.writeError, fmt.Errorf("ollama at %s: %w: %w", p.upstream.Redacted(), manager.ErrUnreachable, err))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg := upstreamErrorMessage(resp)
		wire.LogFailure(p.log, r, resp.StatusCode, errors.New(msg))
		f.writeError(w, resp.StatusCode, msg)
		return
	}

	rc := http.NewResponseController(w)
	dec := json.NewDecoder(resp.Body)
	started := false
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
				p.log.Warn("v1: reading ollama's answer", "path", r.URL.Path, "err", err)
				if !started {
					f.writeError(w, http.StatusBadGateway, fmt.Sprintf("reading ollama's answer: %v", err))
				}
			}
			return
		}
		if msg := inBandError(raw); msg != "" {
			// Ollama reports a failure after the 200 inside the stream.
			if !started {
				f.writeError(w, http.StatusInternalServerError, msg)
			} else if stream {
				_ = writeSSE(w, f.streamError(http.StatusInternalServerError, msg))
			}
			return
		}
		out, done, err := each(raw)
		if err != nil {
			p.log.Warn("v1: converting ollama's answer", "path", r.URL.Path, "err", err)
			if !started {
				f.writeError(w, http.StatusBadGateway, fmt.Sprintf("converting ollama's answer: %v", err))
			}
			return
		}
		if !stream {
			if len(out) > 0 {
				wire.WriteJSON(w, http.StatusOK, out[0])
			}
			return
		}
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
		}
		for _, v := range out {
			if err := writeSSE(w, v); err != nil {
				return
			}
		}
		if done {
			fmt.Fprint(w, f.end)
		}
		if err := rc.Flush(); err != nil || done {
			return
		}
	}
}

// inBandError returns the message of an {"error": "..."} object.
func inBandError(raw []byte) string {
	if !bytes.Contains(raw, []byte(`"error"`)) {
		return ""
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return ""
	}
	return e.Error
}

// upstreamErrorMessage reads Ollama's {"error": ...} from a failed answer.
func upstreamErrorMessage(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamErrMsg))
	if msg := inBandError(b); msg != "" {
		return msg
	}
	if t := strings.TrimSpace(string(b)); t != "" {
		return t
	}
	return http.StatusText(resp.StatusCode)
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
