package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
)

// AliasPrefix starts the model names that pick a model by task:
// "auto:code_generation", "auto:code_generation/architect".
const AliasPrefix = "auto:"

// ParseAlias splits "auto:TASK" or "auto:TASK/ROLE"; ok is false for other
// names.
func ParseAlias(name string) (task, role string, ok bool) {
	rest, ok := strings.CutPrefix(name, AliasPrefix)
	if !ok || rest == "" {
		return "", "", false
	}
	task, role, _ = strings.Cut(rest, "/")
	return task, role, true
}

// held is a model loaded and held for one request.
type held struct {
	model   string
	numCtx  int
	release func()
}

// acquire resolves a requested name (an auto: alias or a model), waits
// until the manager has it loaded within the budget, and holds it against
// eviction until release. A model unknown to the manager is looked up again
// once, in case it was pulled since the last discovery.
func (s *Server) acquire(ctx context.Context, requested, reason string) (held, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opt.AcquireTimeout)
	defer cancel()
	name := requested
	if task, role, ok := ParseAlias(requested); ok && !s.isModel(requested) {
		c, err := s.k.BestModelForTask(ctx, task, role)
		if err != nil {
			return held{}, fmt.Errorf("resolving %s: %w", requested, err)
		}
		name = c.Model
		reason = fmt.Sprintf("%s (%s)", reason, requested)
	}
	release, res, err := s.k.Acquire(ctx, name, reason)
	if errors.Is(err, manager.ErrModelUnknown) {
		if rerr := s.k.Refresh(ctx); rerr == nil {
			release, res, err = s.k.Acquire(ctx, name, reason)
		}
	}
	if err != nil {
		return held{}, err
	}
	// The context the model is loaded at, whatever it was loaded for (its
	// own, auto's pick, a load's context_length): any other num_ctx would
	// make Ollama load it again. The model's own when the manager does not
	// know it (a model adopted from a server that does not say).
	h := held{model: res.Model, numCtx: res.NumCtx, release: release}
	if v, ok := s.lookup(res.Model); ok && h.numCtx == 0 {
		h.numCtx = v.NumCtx
	}
	return h, nil
}

// isModel reports whether name is an installed model (a real model could be
// called "auto" with a tag; it wins over the alias).
func (s *Server) isModel(name string) bool {
	_, ok := s.lookup(name)
	return ok
}

// peek names the model an alias points to now, without loading anything.
func (s *Server) peek(alias string) (string, error) {
	task, role, _ := ParseAlias(alias)
	ranked, err := s.k.Rank(task, role)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", alias, err)
	}
	snap := s.k.Snapshot()
	for _, r := range ranked {
		if v, ok := snap.Model(r.Name); ok && v.Fits {
			return r.Name, nil
		}
	}
	if len(ranked) > 0 {
		return ranked[0].Name, nil
	}
	return "", fmt.Errorf("resolving %s: %w", alias, manager.ErrNoCandidate)
}

// handleNative serves /api/generate, /api/chat, /api/embed and
// /api/embeddings: the model is loaded and held for the whole response,
// which streams through the reverse proxy chunk by chunk.
func (s *Server) handleNative(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(w, r, s.opt.MaxBody)
	if err != nil {
		s.ollamaFail(w, r, err)
		return
	}
	req, err := parseNative(r.URL.Path, b)
	if err != nil {
		s.ollamaFail(w, r, err)
		return
	}
	if req.unload {
		s.unloadByRequest(w, r, req.model)
		return
	}
	h, err := s.acquire(r.Context(), req.model, "request on "+r.URL.Path)
	if err != nil {
		s.ollamaFail(w, r, err)
		return
	}
	// The proxy returns once the upstream body is copied to the client (or
	// either side failed); only then may the model be evicted.
	defer h.release()
	nb, err := req.pin(h)
	if err != nil {
		s.ollamaFail(w, r, err)
		return
	}
	s.forward(w, r, nb)
}

// forward proxies r with body b in place of its own.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, b []byte) {
	out := r.Clone(r.Context())
	out.Body = io.NopCloser(bytes.NewReader(b))
	out.ContentLength = int64(len(b))
	out.GetBody = nil
	s.proxy.ServeHTTP(w, out)
}

// unloadByRequest answers Ollama's unload idiom through the manager, so
// its state stays true, with the answer Ollama would give.
func (s *Server) unloadByRequest(w http.ResponseWriter, r *http.Request, name string) {
	if _, _, ok := ParseAlias(name); ok && !s.isModel(name) {
		real, err := s.peek(name)
		if err != nil {
			s.ollamaFail(w, r, err)
			return
		}
		name = real
	}
	if err := s.k.Unload(r.Context(), name); err != nil {
		s.ollamaFail(w, r, err)
		return
	}
	resp := map[string]any{
		"model": s.canonical(name), "created_at": time.Now().UTC(),
		"done": true, "done_reason": "unload",
	}
	if r.URL.Path == "/api/chat" {
		resp["message"] = map[string]string{"role": "assistant", "content": ""}
	} else {
		resp["response"] = ""
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) ollamaFail(w http.ResponseWriter, r *http.Request, err error) {
	status, _ := classify(err)
	s.logFailure(r, status, err)
	if status == statusClientGone {
		return
	}
	writeOllamaError(w, status, err.Error())
}

// handleShow resolves an alias to the model it points to now, so that
// clients that show a model before using it work with aliases.
func (s *Server) handleShow(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(w, r, s.opt.MaxBody)
	if err != nil {
		s.ollamaFail(w, r, err)
		return
	}
	var req map[string]json.RawMessage
	if json.Unmarshal(b, &req) == nil && req != nil {
		for _, key := range []string{"model", "name"} {
			var name string
			if json.Unmarshal(req[key], &name) != nil {
				continue
			}
			if _, _, ok := ParseAlias(name); ok && !s.isModel(name) {
				real, err := s.peek(name)
				if err != nil {
					s.ollamaFail(w, r, err)
					return
				}
				req[key], _ = json.Marshal(real)
				if nb, err := json.Marshal(req); err == nil {
					b = nb
				}
			}
		}
	}
	s.forward(w, r, b)
}

// handlePassThrough forwards everything else unchanged, bodies capped at
// MaxBody except blob uploads (model files).
func (s *Server) handlePassThrough(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/api/blobs/") {
		if err := capBody(w, r, s.opt.MaxBody); err != nil {
			s.ollamaFail(w, r, err)
			return
		}
	}
	s.proxy.ServeHTTP(w, r)
}

// capBody refuses a body announced larger than limit and caps one that
// turns out larger while it streams.
func capBody(w http.ResponseWriter, r *http.Request, limit int64) error {
	if r.ContentLength > limit {
		return fmt.Errorf("request body of %d bytes: %w", r.ContentLength, &http.MaxBytesError{Limit: limit})
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	return nil
}

// alias is one auto: name and the model it points to now.
type alias struct {
	Name, Target string
}

// aliases lists auto:TASK for every task some installed model suits.
// auto:TASK/ROLE names resolve too but are not listed: tasks × roles would
// drown the real models in pickers.
func (s *Server) aliases() []alias {
	var out []alias
	for _, task := range s.k.Snapshot().Tasks {
		name := AliasPrefix + task
		if s.isModel(name) {
			continue
		}
		if target, err := s.peek(name); err == nil {
			out = append(out, alias{Name: name, Target: target})
		}
	}
	return out
}

// handleTags lists the installed models, then the aliases, each alias
// carrying the details of the model it points to now.
func (s *Server) handleTags(w http.ResponseWriter, r *http.Request) {
	var list struct {
		Models []map[string]any `json:"models"`
	}
	resp, err := s.upstreamGet(r.Context(), "/api/tags", &list)
	if err != nil {
		s.ollamaFail(w, r, err)
		return
	}
	if resp != nil { // not 200: Ollama's answer as it is
		copyResponse(w, resp)
		return
	}
	byName := map[string]map[string]any{}
	for _, m := range list.Models {
		if n, ok := m["name"].(string); ok {
			byName[n] = m
		}
	}
	for _, a := range s.aliases() {
		e := map[string]any{}
		if t, ok := byName[a.Target]; ok {
			e = maps.Clone(t)
		}
		e["name"], e["model"] = a.Name, a.Name
		e["remote_model"] = a.Target // the model it points to now
		list.Models = append(list.Models, e)
	}
	if list.Models == nil {
		list.Models = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, list)
}

// upstreamGet GETs path from Ollama and decodes a 200 answer into v. Any
// other status comes back as the response, body unread, for the caller to
// pass on.
func (s *Server) upstreamGet(ctx context.Context, path string, v any) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.upstream.JoinPath(path).String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ollama at %s: %w: %w", s.upstream.Redacted(), manager.ErrUnreachable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return nil, fmt.Errorf("ollama %s: malformed answer: %w", path, err)
	}
	return nil, nil
}

func copyResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxUpstreamErrMsg))
}
