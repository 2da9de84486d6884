package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
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
func (p *Proxy) acquire(ctx context.Context, requested, reason string) (held, error) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.opt.AcquireTimeout)
	defer cancel()
	name := requested
	if task, role, ok := ParseAlias(requested); ok && !p.isModel(requested) {
		c, err := p.k.BestModelForTask(ctx, task, role)
		if err != nil {
			return held{}, fmt.Errorf("resolving %s: %w", requested, err)
		}
		name = c.Model
		reason = fmt.Sprintf("%s (%s)", reason, requested)
	}
	release, res, err := p.k.Acquire(ctx, name, reason)
	if errors.Is(err, manager.ErrModelUnknown) {
		if rerr := p.k.Refresh(ctx); rerr == nil {
			release, res, err = p.k.Acquire(ctx, name, reason)
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
	if v, ok := p.k.Snapshot().Lookup(res.Model); ok && h.numCtx == 0 {
		h.numCtx = v.NumCtx
	}
	if p.opt.Waited != nil {
		p.opt.Waited(time.Since(began))
	}
	return h, nil
}

// isModel reports whether name is an installed model (a real model could be
// called "auto" with a tag; it wins over the alias).
func (p *Proxy) isModel(name string) bool {
	_, ok := p.k.Snapshot().Lookup(name)
	return ok
}

// peek names the model an alias points to now, without loading anything.
func (p *Proxy) peek(alias string) (string, error) {
	task, role, _ := ParseAlias(alias)
	ranked, err := p.k.Rank(task, role)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", alias, err)
	}
	snap := p.k.Snapshot()
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

// handleShow resolves an alias to the model it points to now, so that
// clients that show a model before using it work with aliases.
func (p *Proxy) handleShow(w http.ResponseWriter, r *http.Request) {
	b, release, err := p.opt.Gate.ReadBody(w, r, p.opt.MaxBody)
	defer release()
	if err != nil {
		p.ollamaFail(w, r, err)
		return
	}
	var req map[string]json.RawMessage
	if json.Unmarshal(b, &req) == nil && req != nil {
		for _, key := range []string{"model", "name"} {
			var name string
			if json.Unmarshal(req[key], &name) != nil {
				continue
			}
			if _, _, ok := ParseAlias(name); ok && !p.isModel(name) {
				real, err := p.peek(name)
				if err != nil {
					p.ollamaFail(w, r, err)
					return
				}
				req[key], _ = json.Marshal(real)
				if nb, err := json.Marshal(req); err == nil {
					b = nb
				}
			}
		}
	}
	p.forward(w, r, net.Buffers{b})
}

// handlePassThrough forwards everything else unchanged, bodies capped at
// MaxBody except blob uploads (model files).
func (p *Proxy) handlePassThrough(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/api/blobs/") {
		if err := capBody(w, r, p.opt.MaxBody); err != nil {
			p.ollamaFail(w, r, err)
			return
		}
	}
	p.rp.ServeHTTP(w, r)
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
func (p *Proxy) aliases() []alias {
	var out []alias
	for _, task := range p.k.Snapshot().Tasks {
		name := AliasPrefix + task
		if p.isModel(name) {
			continue
		}
		if target, err := p.peek(name); err == nil {
			out = append(out, alias{Name: name, Target: target})
		}
	}
	return out
}

// handleTags lists the installed models, then the aliases, each alias
// carrying the details of the model it points to now.
func (p *Proxy) handleTags(w http.ResponseWriter, r *http.Request) {
	var list struct {
		Models []map[string]any `json:"models"`
	}
	resp, err := p.upstreamGet(r.Context(), "/api/tags", &list)
	if err != nil {
		p.ollamaFail(w, r, err)
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
	for _, a := range p.aliases() {
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
	wire.WriteJSON(w, http.StatusOK, list)
}

// upstreamGet GETs path from Ollama and decodes a 200 answer into v. Any
// other status comes back as the response, body unread, for the caller to
// pass on.
func (p *Proxy) upstreamGet(ctx context.Context, path string, v any) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.upstream.JoinPath(path).String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ollama at %s: %w: %w", p.upstream.Redacted(), manager.ErrUnreachable, err)
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

// canonical is the manager's name for a model a client named ("llama3"
// for "llama3:latest"), or the name as given.
func (p *Proxy) canonical(name string) string {
	if v, ok := p.k.Snapshot().Lookup(name); ok {
		return v.Name
	}
	return name
}
