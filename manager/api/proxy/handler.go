// Package proxy serves Ollama's, OpenAI's and Anthropic's inference APIs in
// front of Ollama, loading every model through the manager first so that
// nothing runs outside the VRAM budget.
//
// The inference endpoints (/api/generate, /api/chat, /api/embed,
// /api/embeddings, the OpenAI /v1/chat/completions, /v1/completions,
// /v1/embeddings and /v1/responses, and the Anthropic /v1/messages) first
// resolve the model (auto:TASK and auto:TASK/ROLE through
// BestModelForTask), wait until the manager has loaded it within the
// budget, hold it against eviction until the response is fully written (or
// the client left), and force keep_alive -1 and the context length the
// model is loaded at (its own, "auto"'s pick, or a load's context_length),
// so that Ollama neither unloads it nor reloads it for a client's other
// num_ctx. Errors come in each API's own shape. GET /v1/models and
// /v1/models/{id} list the models and the auto:TASK aliases, in
// Anthropic's shape when the request carries anthropic-version or
// x-api-key. One file per API: native.go (Ollama's), openai.go,
// responses.go, anthropic.go; admin.go for the endpoints that change what
// is installed.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/ollama/ollama/openai"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
	"github.com/vramkeeper/vramkeeper/manager/score"
)

// Manager is what the proxy needs of the manager: *manager.Manager
// satisfies it, tests may use a fake.
type Manager interface {
	// Acquire loads a model within the budget and holds it until release.
	Acquire(ctx context.Context, name, reason string) (release func(), res manager.LoadResult, err error)
	BestModelForTask(ctx context.Context, task, role string) (manager.Choice, error)
	Rank(task, role string) ([]score.Ranked, error)
	Refresh(ctx context.Context) error
	Unload(ctx context.Context, name string) error
	Snapshot() manager.Snapshot
}

// Options configure a Proxy. Zero values take the documented defaults.
type Options struct {
	// MaxBody bounds request bodies (default 32 MiB, enough for a few
	// images in a chat); blob uploads (/api/blobs) are exempt, as model
	// files are gigabytes.
	MaxBody int64
	// UpstreamHeaderTimeout bounds the wait for Ollama's response headers.
	// A non-streaming generation sends them only when it is done, so it is
	// long (default 10 minutes).
	UpstreamHeaderTimeout time.Duration
	// AcquireTimeout bounds how long a request waits for its model to be
	// loaded, swaps included (default 10 minutes).
	AcquireTimeout time.Duration
	// AllowAdmin lets Ollama's delete, pull, push, create, copy, blob
	// uploads, alias changes and account calls through (admin.go).
	AllowAdmin bool
	// Gate bounds the bodies read whole at once (nil: none).
	Gate *wire.BodyGate
	// KnownOnly passes on only the endpoints this proxy knows (the
	// server sets it with a token): an endpoint a newer Ollama adds might
	// load a model or change what is installed behind the manager's back.
	KnownOnly bool
	// Waited, when set, hears how long each request waited for its model
	// (loaded, swaps included) before it went to Ollama (the metrics).
	Waited func(time.Duration)
	Log    *slog.Logger
}

func (o *Options) setDefaults() {
	if o.MaxBody <= 0 {
		o.MaxBody = 32 << 20
	}
	if o.UpstreamHeaderTimeout <= 0 {
		o.UpstreamHeaderTimeout = 10 * time.Minute
	}
	if o.AcquireTimeout <= 0 {
		o.AcquireTimeout = 10 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// Proxy is the inference side of the API.
type Proxy struct {
	k        Manager
	upstream *url.URL
	opt      Options
	log      *slog.Logger
	rp       *httputil.ReverseProxy
	// admin serves Ollama's admin endpoints (admin.go).
	admin  *httputil.ReverseProxy
	client *http.Client // to upstream, for requests we translate
	mux    *http.ServeMux
}

// New returns a proxy for k in front of the Ollama at upstream.
func New(k Manager, upstream *url.URL, opt Options) *Proxy {
	opt.setDefaults()
	p := &Proxy{k: k, upstream: upstream, opt: opt, log: opt.Log}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: opt.UpstreamHeaderTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   32,
		// Ollama's responses are not compressed; asking for gzip would only
		// make the transport buffer streamed chunks.
		DisableCompression: true,
	}
	p.client = &http.Client{Transport: tr}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			// Our token is not Ollama's business, and the server did the
			// origin check already: Ollama's own would refuse origins we
			// allow.
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("X-Api-Key")
			pr.Out.Header.Del("Origin")
			pr.Out.Header.Del("Referer")
		},
		Transport:     tr,
		FlushInterval: -1, // stream every chunk as it comes
		ErrorLog:      slog.NewLogLogger(opt.Log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if berr := wire.BodyFailed(r.Context()); berr != nil {
				p.ollamaFail(w, r, berr) // the client is there, its body is not
				return
			}
			if r.Context().Err() != nil {
				return // the client left; nobody to answer
			}
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeOllamaError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
				return
			}
			p.log.Warn("proxy: upstream failed", "path", r.URL.Path, "err", err)
			writeOllamaError(w, http.StatusBadGateway, fmt.Sprintf("ollama at %s: %v", upstream.Redacted(), err))
		},
	}
	p.admin = adminProxyFor(p.rp)
	p.mux = p.routes()
	return p
}

// ServeHTTP serves one request; the server has checked its token, host
// and origin.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

func (p *Proxy) routes() *http.ServeMux {
	mux := http.NewServeMux()
	// Inference through the manager.
	for _, path := range []string{"/api/generate", "/api/chat", "/api/embed", "/api/embeddings"} {
		mux.HandleFunc("POST "+path, p.handleNative)
	}
	mux.HandleFunc("POST /v1/chat/completions", p.handleOpenAIChat)
	mux.HandleFunc("POST /v1/completions", p.handleOpenAICompletion)
	mux.HandleFunc("POST /v1/embeddings", p.handleOpenAIEmbed)
	mux.HandleFunc("POST /v1/responses", p.handleResponses)
	mux.HandleFunc("POST /v1/messages", p.handleMessages)
	// Ollama also serves these, but passed through they would load models
	// behind the manager's back and outside the budget: refuse them plainly.
	for _, path := range []string{"/v1/images/generations", "/v1/images/edits"} {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			writeOpenAIError(w, http.StatusNotImplemented, r.URL.Path+" is not served through VRAM Keeper (it would bypass the VRAM budget); use /v1/chat/completions or /api/chat")
		})
	}
	// Lists with the auto: aliases beside the real models.
	mux.HandleFunc("GET /api/tags", p.handleTags)
	mux.HandleFunc("GET /v1/models", p.handleModelList)
	mux.HandleFunc("GET /v1/models/{model...}", p.handleModelInfo)
	mux.HandleFunc("POST /api/show", p.handleShow)
	// Admin: by choice only (admin.go); any method, in case a newer
	// Ollama accepts another.
	mux.HandleFunc("/api/delete", p.handleDelete)
	for _, path := range adminPaths {
		mux.HandleFunc(path, p.handleAdmin)
	}
	// Read-only calls pass as they are.
	for _, pattern := range readOnly {
		mux.HandleFunc(pattern, p.handlePassThrough)
	}
	// The rest: passed on without a token (the user's own machine, and
	// whatever a newer Ollama serves), refused with one.
	mux.HandleFunc("/", p.handleUnknown)
	return mux
}

// readOnly are Ollama's endpoints that change nothing and load nothing
// (a GET pattern serves HEAD too).
var readOnly = []string{
	"GET /{$}", "GET /api/version", "GET /api/ps", "GET /api/status",
	"GET /api/experimental/aliases", "HEAD /api/blobs/{digest...}",
}

// handleUnknown serves what no other route does: passed through as it is
// where the proxy passes everything, refused where it passes only what it
// knows.
func (p *Proxy) handleUnknown(w http.ResponseWriter, r *http.Request) {
	if p.opt.KnownOnly {
		msg := fmt.Sprintf("%s %s is not passed to Ollama through VRAM Keeper with a token: only inference, the model lists and read-only calls are", r.Method, r.URL.Path)
		p.log.Warn("request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "status", http.StatusForbidden, "why", msg)
		Refuse(w, r, http.StatusForbidden, msg)
		return
	}
	p.handlePassThrough(w, r)
}

// Refuse answers a request the server will not serve in the shape its API
// expects: Anthropic's, OpenAI's (/v1/) or Ollama's.
func Refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	switch {
	case speaksAnthropic(r):
		writeAnthropicError(w, status, msg)
	case strings.HasPrefix(r.URL.Path, "/v1/"):
		writeOpenAIError(w, status, msg)
	default:
		writeOllamaError(w, status, msg)
	}
}

// writeOllamaError answers the way Ollama does: {"error": "..."}.
func writeOllamaError(w http.ResponseWriter, status int, msg string) {
	wire.WriteJSON(w, status, map[string]string{"error": msg})
}

// writeOpenAIError answers the way OpenAI (and Ollama's /v1) does.
func writeOpenAIError(w http.ResponseWriter, status int, msg string) {
	wire.WriteJSON(w, status, openai.NewError(status, msg))
}

// failAs answers err with the status wire.Classify gives it, in the shape
// write makes; a client that left gets nothing.
func (p *Proxy) failAs(w http.ResponseWriter, r *http.Request, write errorWriter, err error) {
	status, _ := wire.Classify(err)
	wire.LogFailure(p.log, r, status, err)
	if status == wire.StatusClientGone {
		return
	}
	write(w, status, err.Error())
}

func (p *Proxy) ollamaFail(w http.ResponseWriter, r *http.Request, err error) {
	p.failAs(w, r, writeOllamaError, err)
}

// maxUpstreamErrMsg bounds an error answer read from Ollama.
const maxUpstreamErrMsg = 64 << 10
