// Package api serves VRAM Keeper over HTTP: a management API under
// /keeper/v1/ and a proxy in front of Ollama that serves Ollama's native and
// OpenAI-compatible endpoints, loading every model through the manager first
// so that nothing runs outside the VRAM budget.
//
// # Management API (JSON; errors are {"error": "...", "code": "..."})
//
//	GET  /keeper/v1/status                 manager.Snapshot
//	GET  /keeper/v1/models                 {"models": [manager.ModelView...]}
//	GET  /keeper/v1/models/{name}          manager.ModelView
//	POST /keeper/v1/best                   {"task": "...", "role": "..."} → manager.Choice
//	POST /keeper/v1/plan                   manager.PlanRequest → manager.Plan: what a load would do, done nothing
//	POST /keeper/v1/models/{name}/load     {"context_length": N} (optional) → manager.LoadResult
//	POST /keeper/v1/models/{name}/unload   {"model": ..., "unloaded": true}
//	POST /keeper/v1/models/{name}/pin      {"model": ..., "pinned": true}
//	POST /keeper/v1/models/{name}/unpin    {"model": ..., "pinned": false}
//	GET  /keeper/v1/history                {"events": [manager.Event...]}
//	GET  /keeper/v1/timeline[?since=T]     timeline.Window: samples and marks after T
//	GET  /keeper/v1/events                 Server-Sent Events, one per manager.Event (503 past the cap)
//	POST /keeper/v1/yield                  {"unloaded": [...]}: give the GPU back until restore
//	POST /keeper/v1/restore                {"restored": [...]}: put back what yield unloaded
//	POST /keeper/v1/pause                  {"paused": true}: stop automatic management
//	POST /keeper/v1/resume                 {"paused": false}
//	POST /keeper/v1/settings               SettingsRequest → SettingsRequest as applied
//	POST /keeper/v1/ollama/start           StartOllamaResponse (desktop tray only; 404 elsewhere)
//	POST /keeper/v1/window                 {"opened": true}: the tray opens its window (tray only)
//	GET  /keeper/v1/instance               wire.Instance: its PID, the Ollama and state folder it manages
//	POST /keeper/v1/pull                   {"model": ..., "insecure": bool} → NDJSON wire.PullLine: download a model
//
// # Metrics and MCP
//
//	GET  /metrics                          Prometheus metrics (package metrics)
//	POST /mcp                              the MCP server's tools over Streamable HTTP (package mcp)
//
// Model names hold ':' and '/' (hf.co/user/model:Q4_K_M). The path takes the
// name as it is, slashes included, and the action is always the last segment:
// POST /keeper/v1/models/hf.co/user/model:Q4_K_M/load. Percent-escaped names
// (hf.co%2Fuser%2Fmodel%3AQ4_K_M) work as well.
//
// Status codes: 400 malformed request (a path that decodes more than three
// times, or to control characters, included), unknown task or role; 401
// missing or wrong token; 403 a browser origin or host that is not
// allowed, or with a token an admin endpoint (delete, pull, push, create,
// copy, blobs, alias changes, the server's account) without allow_admin,
// or an endpoint the proxy does not know; 404 unknown model, or no installed model suits the
// task; 409 the model fits the budget but not now (paused, or other
// programs hold the card), the GPU was given back (yield: nothing loads
// until restore, code "yielded", with the manager's message), the model
// does not fit on the GPU and gpu_only keeps it off the CPU (code
// "spilled"), or a client of another API version; 413 body too large; 502
// Ollama unreachable or a load failed inside Ollama; 503 the manager is
// stopping, or too many event streams; 504 the wait ran past its deadline,
// or Ollama did not finish a load or unload within load_timeout (codes
// "load_timeout", "timed_out"); 507 the model is larger than the whole
// budget and can never be loaded.
//
// # Proxy
//
// Everything outside /keeper/ goes to the proxy (package proxy), which
// loads every model through the manager before Ollama sees a request.
//
// Every path is decoded as Ollama's router will read it before anything
// is decided on it (path.go): /api%2Fcopy is /api/copy, and is refused
// like it.
package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/version"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/mcp"
	"github.com/vramkeeper/vramkeeper/manager/api/metrics"
	"github.com/vramkeeper/vramkeeper/manager/api/proxy"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
	"github.com/vramkeeper/vramkeeper/manager/keeper"
)

// Manager is what the server needs: the Keeper every client uses, and
// what the proxy needs besides. *manager.Manager satisfies it, tests may
// use a fake.
type Manager interface {
	keeper.Keeper
	proxy.Manager
}

var _ Manager = (*manager.Manager)(nil)

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// Token, when set, is required on every request as
	// "Authorization: Bearer <token>", or as "x-api-key: <token>", where
	// Anthropic's SDKs put their API key. Serve refuses a non-loopback
	// address without one.
	Token string
	// CORSOrigins are the browser origins allowed to call the server
	// ("*" allows any). With none, no CORS headers are sent and any request
	// carrying an Origin header is refused, so a web page cannot drive the
	// local API (a simple cross-site POST needs no preflight).
	CORSOrigins []string
	// MaxBody bounds request bodies on the proxy (default 32 MiB, enough
	// for a few images in a chat); blob uploads (/api/blobs) are exempt,
	// as model files are gigabytes. Management API bodies are capped at
	// 1 MiB.
	MaxBody int64
	// UpstreamHeaderTimeout bounds the wait for Ollama's response headers.
	// A non-streaming generation sends them only when it is done, so it is
	// long (default 10 minutes).
	UpstreamHeaderTimeout time.Duration
	// AcquireTimeout bounds how long a request waits for its model to be
	// loaded, swaps included (default 10 minutes).
	AcquireTimeout time.Duration
	// MaxEventStreams caps the open event streams (default 64); past it
	// GET /keeper/v1/events answers 503.
	MaxEventStreams int
	// EventWriteTimeout is how long one event may take to reach a client
	// before its stream is dropped (default 10 s).
	EventWriteTimeout time.Duration
	// WriteTimeout is how long each write of a response may take to reach
	// the client (default 30 s), extended at every chunk: a client that
	// stops reading loses its request, and its hold on the model, within
	// it once the socket buffers are full (deadline.go).
	WriteTimeout time.Duration
	// BodyTimeout is how long a request body may take to arrive, from the
	// request's start (default 60 s); a blob upload only has to keep
	// moving, each read within it.
	BodyTimeout time.Duration
	// BodiesInFlight bounds the bytes of request bodies read whole at
	// once, across all requests (default wire.DefaultBodiesInFlight); past
	// it a request waits a moment, then gets 503 with Retry-After.
	BodiesInFlight int64
	// AllowAdmin lets Ollama's delete, pull, push, create, copy, blob
	// uploads, alias changes and account calls through when a token is
	// set. Without a token the server is loopback only and they always
	// pass, as does every endpoint the proxy does not know; with one, those
	// are refused.
	AllowAdmin bool
	// StartOllama, when set, serves POST /keeper/v1/ollama/start: the
	// desktop tray starts `ollama serve` for its window's banner.
	StartOllama func(ctx context.Context) (wire.StartOllamaResponse, error)
	// OpenWindow, when set, serves POST /keeper/v1/window: the desktop
	// tray opens its window.
	OpenWindow func() error
	// Instance, when set, serves GET /keeper/v1/instance: what this
	// instance manages, which clients check before trusting it.
	Instance func() wire.Instance
	Log      *slog.Logger
}

func (o *Options) setDefaults() {
	if o.MaxEventStreams <= 0 {
		o.MaxEventStreams = 64
	}
	if o.EventWriteTimeout <= 0 {
		o.EventWriteTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = defaultWriteTimeout
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = wire.BodyReadTimeout
	}
	if o.BodiesInFlight <= 0 {
		o.BodiesInFlight = wire.DefaultBodiesInFlight
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownGrace     = 10 * time.Second
	maxHeaderBytes    = 64 << 10
	sseKeepAlive      = 15 * time.Second
)

// Server is the HTTP face of one manager.
type Server struct {
	k        Manager
	upstream *url.URL
	opt      Options
	log      *slog.Logger
	proxy    *proxy.Proxy
	metrics  *metrics.Metrics
	handler  http.Handler
	gate     *wire.BodyGate // bodies read whole, the proxy's and ours

	// streams holds a token per open event stream.
	streams chan struct{}

	stopOnce sync.Once
	stopping chan struct{} // closed when Serve begins shutting down
}

// New returns a server for k that forwards to the Ollama at upstream.
func New(k Manager, upstream *url.URL, opt Options) *Server {
	opt.setDefaults()
	s := &Server{
		k:        k,
		upstream: upstream,
		opt:      opt,
		log:      opt.Log,
		stopping: make(chan struct{}),
		streams:  make(chan struct{}, opt.MaxEventStreams),
		gate:     wire.NewBodyGate(opt.BodiesInFlight),
		metrics:  metrics.New(k, opt.Log),
	}
	s.proxy = proxy.New(k, upstream, proxy.Options{
		Waited:  s.metrics.ObserveWait,
		MaxBody: opt.MaxBody, UpstreamHeaderTimeout: opt.UpstreamHeaderTimeout, AcquireTimeout: opt.AcquireTimeout,
		Gate: s.gate,
		// Without a token the server is loopback only: the user's own
		// machine may change what is installed.
		AllowAdmin: opt.Token == "" || opt.AllowAdmin,
		KnownOnly:  opt.Token != "",
		Log:        opt.Log,
	})
	s.handler = s.routes()
	return s
}

// Handler returns the server's handler, with authentication and origin
// checks applied.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /keeper/v1/status", s.handleStatus)
	mux.HandleFunc("GET /keeper/v1/models", s.handleModels)
	mux.HandleFunc("GET /keeper/v1/models/{name...}", s.handleModel)
	mux.HandleFunc("POST /keeper/v1/models/{name...}", s.handleModelAction)
	mux.HandleFunc("POST /keeper/v1/best", s.handleBest)
	mux.HandleFunc("POST /keeper/v1/plan", s.handlePlan)
	mux.HandleFunc("GET /keeper/v1/history", s.handleHistory)
	mux.HandleFunc("GET /keeper/v1/timeline", s.handleTimeline)
	mux.HandleFunc("GET /keeper/v1/events", s.handleEvents)
	mux.HandleFunc("POST /keeper/v1/yield", s.handleYield)
	mux.HandleFunc("POST /keeper/v1/restore", s.handleRestore)
	mux.HandleFunc("POST /keeper/v1/pause", s.handlePause)
	mux.HandleFunc("POST /keeper/v1/resume", s.handlePause)
	mux.HandleFunc("POST /keeper/v1/settings", s.handleSettings)
	mux.HandleFunc("POST /keeper/v1/ollama/start", s.handleStartOllama)
	mux.HandleFunc("POST /keeper/v1/window", s.handleOpenWindow)
	mux.HandleFunc("GET /keeper/v1/instance", s.handleInstance)
	mux.HandleFunc("POST /keeper/v1/pull", s.handlePull)
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.Handle("/mcp", mcp.Handler(s.k, mcp.Options{Version: version.Version, Log: s.log}))
	mux.HandleFunc("/keeper/", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteError(w, http.StatusNotFound, wire.CodeNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	// Everything else: inference through the manager, the rest passed on.
	mux.Handle("/", s.proxy)
	return s.guard(mux)
}

// guard applies the checks every request passes: the path as Ollama
// reads it (path.go), the deadlines (deadline.go), then token, host,
// origin.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		perr := canonicalize(r)
		w, r, done := withDeadlines(w, r, s.opt.WriteTimeout, s.opt.BodyTimeout)
		defer done() // the server's last write of the answer, after the handler
		if perr != nil {
			s.deny(w, r, http.StatusBadRequest, wire.CodeBadRequest, perr.Error())
			return
		}
		origin := r.Header.Get("Origin")
		if origin != "" {
			if !s.originAllowed(origin) {
				s.deny(w, r, http.StatusForbidden, "forbidden", fmt.Sprintf("origin %q is not allowed (configure CORS origins to allow it)", origin))
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, HEAD, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, X-Api-Key, Anthropic-Version, Content-Type")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		w.Header().Set(wire.VersionHeader, wire.APIVersion)
		if v := r.Header.Get(wire.VersionHeader); v != "" && v != wire.APIVersion && strings.HasPrefix(r.URL.Path, "/keeper/") {
			s.deny(w, r, http.StatusConflict, wire.CodeVersion,
				fmt.Sprintf("this VRAM Keeper speaks API version %s, the client %s: use the same vramkeeper release for both", wire.APIVersion, v))
			return
		}
		if s.opt.Token == "" {
			// Loopback only: refuse other Host names so that a web page on
			// a rebound DNS name cannot reach the API through the browser.
			if !wire.LoopbackHost(r.Host) {
				s.deny(w, r, http.StatusForbidden, "forbidden", fmt.Sprintf("host %q is not allowed without a token", r.Host))
				return
			}
		} else if !s.tokenOK(r.Header) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vramkeeper"`)
			s.deny(w, r, http.StatusUnauthorized, "unauthorized", "missing or wrong token: send Authorization: Bearer <token> (or x-api-key: <token>)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) deny(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.log.Warn("request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "why", msg)
	if strings.HasPrefix(r.URL.Path, "/keeper/") {
		wire.WriteError(w, status, code, msg)
		return
	}
	proxy.Refuse(w, r, status, msg)
}

// tokenOK: the token as a bearer token (OpenAI's SDKs, ours) or as an
// x-api-key (Anthropic's SDKs and Claude Code with an API key).
func (s *Server) tokenOK(h http.Header) bool {
	got, ok := bearer(h.Get("Authorization"))
	if !ok {
		got, ok = h.Get("X-Api-Key"), h.Get("X-Api-Key") != ""
	}
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.opt.Token)) == 1
}

// bearer reads "Bearer <token>"; the scheme is case-insensitive (RFC 9110
// section 11.1), so "bearer x" is the same credential.
func bearer(authorization string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

func (s *Server) originAllowed(origin string) bool {
	return slices.Contains(s.opt.CORSOrigins, "*") || slices.Contains(s.opt.CORSOrigins, origin)
}

// Serve listens on addr and serves until ctx ends, then shuts down
// gracefully. It refuses a non-loopback address without a token.
func (s *Server) Serve(ctx context.Context, addr string) error {
	if !wire.IsLoopback(addr) && s.opt.Token == "" {
		return fmt.Errorf("listening on %s (not loopback) needs a token: anyone who can reach it could load and unload models", addr)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx ends (tests use a port-0 listener).
// It closes ln.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		// A path and headers past 64 KiB are nobody's API call (the
		// default, 1 MiB, let one request put a megabyte into every log
		// line that names its path).
		MaxHeaderBytes: maxHeaderBytes,
		ConnContext:    withConn, // the stall watch reads the connection (deadline.go)
		// No ReadTimeout or WriteTimeout: a generation streams for minutes
		// and a blob upload takes as long as it takes. Every request gets
		// deadlines of its own instead, per write and for its body
		// (deadline.go).
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	mctx, stopMetrics := context.WithCancel(ctx)
	metricsDone := make(chan struct{})
	go func() { defer close(metricsDone); s.metrics.Run(mctx) }()
	defer func() { stopMetrics(); <-metricsDone }()
	s.log.Info("serving", "addr", ln.Addr().String(), "upstream", s.upstream.Redacted(), "token", s.opt.Token != "")
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Event streams never end by themselves: tell them to stop, then let
	// running requests finish for a while.
	s.stopOnce.Do(func() { close(s.stopping) })
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		s.log.Warn("shutdown: closing requests still running", "err", err)
		err = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serr)
	}
	return err
}
