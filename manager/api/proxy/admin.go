package proxy

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// Ollama's admin endpoints change what is installed. Through the proxy
// they pass only where the API is loopback without a token (the user's
// own machine) or where the config allows them (allow_admin = true): a
// token handed to an agent on the LAN should let it use models, not
// delete or replace them.

// adminRefreshTimeout bounds the catalogue refresh after an admin call.
const adminRefreshTimeout = 30 * time.Second

// adminPaths are the admin endpoints handleAdmin serves (/api/delete has a
// handler of its own): what is installed, the blobs models are made of,
// the aliases that redirect a model's name to another model, and the
// server's ollama.com account.
var adminPaths = []string{
	"/api/pull", "/api/push", "/api/create", "/api/copy", "POST /api/blobs/{digest...}",
	"POST /api/experimental/aliases", "DELETE /api/experimental/aliases",
	"/api/signout", "/api/me", "/api/user/keys/{key...}",
}

// changesCatalogue: after these succeed the installed models are read
// again.
var changesCatalogue = []string{"/api/pull", "/api/create", "/api/copy"}

// refuseAdmin answers 403 when admin endpoints are not allowed; true when
// it did.
func (p *Proxy) refuseAdmin(w http.ResponseWriter, r *http.Request) bool {
	if p.opt.AllowAdmin {
		return false
	}
	msg := fmt.Sprintf("%s %s changes the installed models or the server's account and is not allowed through VRAM Keeper with a token; set allow_admin = true in the config to allow it", r.Method, r.URL.Path)
	p.log.Warn("request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "status", http.StatusForbidden, "why", msg)
	Refuse(w, r, http.StatusForbidden, msg)
	return true
}

// handleAdmin serves /api/pull, /api/push, /api/create, /api/copy and blob
// uploads: passed through when allowed; the catalogue is refreshed once
// Ollama answers, so a pulled or created model is known at once.
func (p *Proxy) handleAdmin(w http.ResponseWriter, r *http.Request) {
	if p.refuseAdmin(w, r) {
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	if !strings.HasPrefix(r.URL.Path, "/api/blobs/") {
		if err := capBody(w, r, p.opt.MaxBody); err != nil {
			p.ollamaFail(w, r, err)
			return
		}
	}
	p.admin.ServeHTTP(rec, r)
	if slices.Contains(changesCatalogue, r.URL.Path) && rec.status == http.StatusOK {
		p.refreshAfter(r)
	}
}

// handleDelete serves DELETE /api/delete: the manager unloads the model
// first (so its table never shows a deleted model as loaded, and the VRAM
// is freed through it), then Ollama deletes it, then the catalogue is
// refreshed before the answer ends.
func (p *Proxy) handleDelete(w http.ResponseWriter, r *http.Request) {
	if p.refuseAdmin(w, r) {
		return
	}
	b, release, err := p.opt.Gate.ReadBody(w, r, wire.MaxBody)
	defer release()
	if err != nil {
		p.ollamaFail(w, r, err)
		return
	}
	var req api.DeleteRequest
	if err := decodeFirst(b, &req); err != nil {
		p.ollamaFail(w, r, wire.BadRequestf("malformed JSON body: %w", err))
		return
	}
	name := cmp.Or(req.Model, req.Name) // as Ollama reads it
	if name == "" {
		p.ollamaFail(w, r, wire.BadRequestf("model is required"))
		return
	}
	if v, ok := p.k.Snapshot().Lookup(name); ok && v.Loaded {
		if err := p.k.Unload(r.Context(), v.Name); err != nil {
			p.ollamaFail(w, r, fmt.Errorf("unloading %s before deleting it: %w", v.Name, err))
			return
		}
	}
	rec := &statusRecorder{ResponseWriter: w}
	out := r.Clone(r.Context())
	out.Body, out.ContentLength, out.GetBody = io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
	p.admin.ServeHTTP(rec, out)
	if rec.status == http.StatusOK {
		p.refreshAfter(r)
	}
}

// adminProxyFor is the proxy for admin calls: Ollama's answer loses its
// Content-Length, so the client reads its end only when the handler
// returns, after the catalogue refresh: whoever deleted or pulled a model
// and asks the manager next finds the table up to date.
func adminProxyFor(p *httputil.ReverseProxy) *httputil.ReverseProxy {
	adm := *p
	adm.ModifyResponse = func(resp *http.Response) error {
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		return nil
	}
	return &adm
}

// refreshAfter rereads the catalogue after an admin call succeeded, on a
// context that outlives a client that hung up once it had its answer.
func (p *Proxy) refreshAfter(r *http.Request) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), adminRefreshTimeout)
	defer cancel()
	if err := p.k.Refresh(ctx); err != nil {
		p.log.Warn("catalogue not refreshed after an admin call", "path", r.URL.Path, "err", err)
	}
}

// statusRecorder notes the status a handler wrote; Unwrap keeps Flush and
// deadlines reachable through http.ResponseController (pull streams).
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
