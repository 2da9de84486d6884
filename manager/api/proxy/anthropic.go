package proxy

// Anthropic's Messages API (POST /v1/messages, what Claude-Code-style
// agents speak) is translated here like OpenAI's chat (see openai.go) and
// for the same reason: passed to Ollama's own /v1/messages it would run
// without the manager's num_ctx and keep_alive, so Ollama would reload the
// model behind the manager's back and unload it after five idle minutes.
// The request is converted with Ollama's anthropic package (the code its
// AnthropicMessagesMiddleware runs), sent to /api/chat with the manager's
// runner options and keep_alive -1, and the answer converted back with the
// same package, event by event. GET /v1/models and /v1/models/{id} answer
// in Anthropic's shape when the client is Anthropic's.

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ollama/ollama/anthropic"
	"github.com/ollama/ollama/api"

	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// writeAnthropicError answers the way Anthropic (and Ollama's
// /v1/messages) does: {"type":"error","error":{"type":...,"message":...}}.
func writeAnthropicError(w http.ResponseWriter, status int, msg string) {
	wire.WriteJSON(w, status, anthropic.NewError(status, msg))
}

var anthropicDialect = dialect{
	writeError: writeAnthropicError,
	streamError: func(status int, msg string) any {
		return sseEvent{"error", anthropic.StreamErrorEvent{Type: "error", Error: anthropic.NewError(status, msg).Error}}
	},
}

// speaksAnthropic reports whether r comes from an Anthropic client: the
// Messages endpoint, or the headers Anthropic's SDKs send on every request.
func speaksAnthropic(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/v1/messages") ||
		r.Header.Get("anthropic-version") != "" || r.Header.Get("x-api-key") != ""
}

func (p *Proxy) anthropicFail(w http.ResponseWriter, r *http.Request, err error) {
	p.failAs(w, r, writeAnthropicError, err)
}

func (p *Proxy) handleMessages(w http.ResponseWriter, r *http.Request) {
	req, native, h, ok := translate(p, w, r, anthropicDialect, func(req *anthropic.MessagesRequest) (string, *api.ChatRequest, error) {
		// The same checks, in the same order, as Ollama's middleware.
		switch {
		case req.Model == "":
			return "", nil, wire.BadRequestf("model is required")
		case req.MaxTokens <= 0:
			return "", nil, wire.BadRequestf("max_tokens is required and must be positive")
		case len(req.Messages) == 0:
			return "", nil, wire.BadRequestf("messages is required")
		}
		n, err := anthropic.FromMessagesRequest(*req)
		if err != nil {
			return "", nil, badRequest(err)
		}
		// Ollama relaxes "thinking enabled" to unset for Anthropic clients,
		// so that a model without thinking answers instead of failing; a
		// model with thinking thinks when unset anyway. /api/chat does not
		// relax it.
		n.Think = nil
		return req.Model, n, nil
	}, pinChat)
	if !ok {
		return
	}
	defer h.release()

	id := anthropic.GenerateMessageID()
	conv := anthropic.NewStreamConverter(id, h.model, anthropic.EstimateInputTokens(req))
	p.relay(w, r, anthropicDialect, "/api/chat", native, req.Stream, func(raw []byte) ([]any, bool, error) {
		cr, err := decodeChatResponse(raw)
		if err != nil {
			return nil, false, err
		}
		if !req.Stream {
			return []any{anthropic.ToMessagesResponse(id, cr)}, cr.Done, nil
		}
		var out []any
		for _, e := range conv.Process(cr) {
			out = append(out, sseEvent{e.Event, e.Data})
		}
		return out, cr.Done, nil
	})
}

// anthropicModel is one entry of Anthropic's model list (ModelInfo). The
// fields Ollama has no value for are null, as Anthropic's own are when
// unknown.
type anthropicModel struct {
	Type        string    `json:"type"` // "model"
	ID          string    `json:"id"`
	DisplayName string    `json:"display_name"`
	CreatedAt   time.Time `json:"created_at"`
	// MaxInputTokens is the context length the manager loads the model at:
	// what a request can really use.
	MaxInputTokens *int    `json:"max_input_tokens"`
	MaxTokens      *int    `json:"max_tokens"`
	Capabilities   any     `json:"capabilities"`
	Lifecycle      string  `json:"lifecycle"` // "active"
	Line           *string `json:"line"`
	DeprecatedAt   *string `json:"deprecated_at"`
	RetiresAt      *string `json:"retires_at"`
}

// anthropicModelList is Anthropic's paged list answer.
type anthropicModelList struct {
	Data    []anthropicModel `json:"data"`
	HasMore bool             `json:"has_more"`
	FirstID *string          `json:"first_id"`
	LastID  *string          `json:"last_id"`
}

// Anthropic's page size bounds.
const (
	anthropicDefaultLimit = 20
	anthropicMaxLimit     = 1000
)

// handleModelList serves GET /v1/models in the shape of the client's API.
func (p *Proxy) handleModelList(w http.ResponseWriter, r *http.Request) {
	if speaksAnthropic(r) {
		p.handleAnthropicModels(w, r)
		return
	}
	p.handleOpenAIModels(w, r)
}

// handleModelInfo serves GET /v1/models/{id} in the shape of the client's API.
func (p *Proxy) handleModelInfo(w http.ResponseWriter, r *http.Request) {
	if speaksAnthropic(r) {
		p.handleAnthropicModel(w, r)
		return
	}
	p.handleOpenAIModel(w, r)
}

// anthropicModels lists the installed models, then the aliases. When
// Ollama answers /api/tags with an error, ok is false and the error is
// written.
func (p *Proxy) anthropicModels(w http.ResponseWriter, r *http.Request) (list []anthropicModel, ok bool) {
	var tags api.ListResponse
	resp, err := p.upstreamGet(r.Context(), "/api/tags", &tags)
	if err != nil {
		p.anthropicFail(w, r, err)
		return nil, false
	}
	if resp != nil {
		defer resp.Body.Close()
		writeAnthropicError(w, resp.StatusCode, upstreamErrorMessage(resp))
		return nil, false
	}
	byName := map[string]anthropicModel{}
	for _, m := range tags.Models {
		e := anthropicModel{
			Type: "model", ID: m.Name, DisplayName: m.Name, CreatedAt: m.ModifiedAt.UTC(), Lifecycle: "active",
		}
		if v, ok := p.k.Snapshot().Lookup(m.Name); ok && v.NumCtx > 0 {
			n := v.NumCtx
			if v.LoadedCtx > 0 { // what requests get: the context it is loaded at
				n = v.LoadedCtx
			}
			e.MaxInputTokens = &n
		}
		byName[m.Name] = e
		list = append(list, e)
	}
	for _, a := range p.aliases() {
		e, ok := byName[a.Target]
		if !ok { // gone from /api/tags since the manager last looked
			e.CreatedAt = time.Unix(0, 0).UTC() // Anthropic's "unknown"
		}
		e.Type, e.ID, e.Lifecycle = "model", a.Name, "active"
		e.DisplayName = fmt.Sprintf("%s (now %s)", a.Name, a.Target)
		list = append(list, e)
	}
	return list, true
}

func (p *Proxy) handleAnthropicModels(w http.ResponseWriter, r *http.Request) {
	list, ok := p.anthropicModels(w, r)
	if !ok {
		return
	}
	out, err := anthropicPage(list, r.URL.Query().Get("limit"), r.URL.Query().Get("after_id"), r.URL.Query().Get("before_id"))
	if err != nil {
		p.anthropicFail(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

// anthropicPage cuts one page out of list the way Anthropic pages: limit
// entries after after_id, or the limit entries before before_id.
func anthropicPage(list []anthropicModel, limitArg, afterID, beforeID string) (anthropicModelList, error) {
	limit := anthropicDefaultLimit
	if limitArg != "" {
		n, err := strconv.Atoi(limitArg)
		if err != nil || n < 1 || n > anthropicMaxLimit {
			return anthropicModelList{}, wire.BadRequestf("limit: %q is not a number from 1 to %d", limitArg, anthropicMaxLimit)
		}
		limit = n
	}
	if afterID != "" && beforeID != "" {
		return anthropicModelList{}, wire.BadRequestf("after_id and before_id cannot both be set")
	}
	index := func(id string) (int, error) {
		for i, m := range list {
			if m.ID == id {
				return i, nil
			}
		}
		return 0, wire.BadRequestf("no model %q to page from", id)
	}
	from, to := 0, min(limit, len(list))
	hasMore := to < len(list)
	switch {
	case afterID != "":
		i, err := index(afterID)
		if err != nil {
			return anthropicModelList{}, err
		}
		from, to = i+1, min(i+1+limit, len(list))
		hasMore = to < len(list)
	case beforeID != "":
		i, err := index(beforeID)
		if err != nil {
			return anthropicModelList{}, err
		}
		from, to = max(0, i-limit), i
		hasMore = from > 0
	}
	out := anthropicModelList{Data: list[from:to], HasMore: hasMore}
	if len(out.Data) > 0 {
		out.FirstID, out.LastID = &out.Data[0].ID, &out.Data[len(out.Data)-1].ID
	} else {
		out.Data = []anthropicModel{}
	}
	return out, nil
}

// handleAnthropicModel answers for one model or alias, by the name the
// client gave or its canonical form ("llama3" for "llama3:latest").
func (p *Proxy) handleAnthropicModel(w http.ResponseWriter, r *http.Request) {
	list, ok := p.anthropicModels(w, r)
	if !ok {
		return
	}
	id := r.PathValue("model")
	for _, name := range []string{id, p.canonical(id)} {
		for _, m := range list {
			if m.ID == name {
				wire.WriteJSON(w, http.StatusOK, m)
				return
			}
		}
	}
	writeAnthropicError(w, http.StatusNotFound, fmt.Sprintf("model: %s", id))
}
