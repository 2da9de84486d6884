// Package ollama implements manager.Runtime over Ollama's HTTP API, through
// the official client package (github.com/ollama/ollama/api) at the version
// go.mod pins, so requests and responses match the server exactly.
package ollama

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/envconfig"
	"github.com/ollama/ollama/types/model"

	"github.com/vramkeeper/vramkeeper/manager/estimate"
	"github.com/vramkeeper/vramkeeper/manager/prefetch"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// Transport timeouts. They catch a server that is down or wedged; how long a
// call may take as a whole is the caller's context's business.
const (
	// dialTimeout: a local (or LAN) server accepts a connection at once or
	// not at all.
	dialTimeout = 5 * time.Second
	// headerTimeout bounds the wait for response headers on every call but
	// Load. /api/show on a large model parses its GGUF header, which takes a
	// few seconds on a slow disk, so this is generous.
	headerTimeout = 60 * time.Second
	// unloadPoll is how often Unload asks /api/ps whether the model is gone.
	unloadPoll = 150 * time.Millisecond
	// unloadResend is how often Unload repeats its request while waiting: a
	// model still loading when the first one arrived is not yet in the
	// scheduler's table, so that request did nothing.
	unloadResend = 2 * time.Second
)

// Client talks to one Ollama server. It is safe for concurrent use; its only
// state is the file size of each model digest it has listed, which never
// goes stale (a digest names one file).
type Client struct {
	base *url.URL
	// api is for every call that should answer promptly; load has no header
	// timeout, because Ollama sends the headers of /api/generate and
	// /api/embed only once the model is loaded, which can take minutes.
	api  *api.Client
	load *api.Client
	// http makes the calls the pinned api client cannot decode (List).
	http *http.Client
	log  *slog.Logger
	// fileSizes maps a model digest to its file size (uint64), from List,
	// so Running can tell a loading model by its sizes.
	fileSizes sync.Map
	// Unload's pacing; fields only so tests can shorten them.
	pollEvery, resendEvery time.Duration
}

// New returns a client for the server at base. With a nil httpClient it uses
// transports with dial and header timeouts (none on loads); a caller that
// passes its own client owns its timeouts, and it is used for every call.
func New(base *url.URL, httpClient *http.Client) *Client {
	c := &Client{
		base:        base,
		log:         slog.Default().With("ollama", base.String()),
		pollEvery:   unloadPoll,
		resendEvery: unloadResend,
	}
	if httpClient != nil {
		c.api = api.NewClient(base, httpClient)
		c.load = c.api
		c.http = httpClient
		return c
	}
	c.http = &http.Client{Transport: newTransport(headerTimeout)}
	c.api = api.NewClient(base, c.http)
	c.load = api.NewClient(base, &http.Client{Transport: newTransport(0)})
	return c
}

// FromEnv returns a client for OLLAMA_HOST, read exactly as the official
// client reads it (envconfig.Host: default http://127.0.0.1:11434, bare
// host:port, scheme-specific default ports, a path prefix).
func FromEnv() *Client {
	return New(envconfig.Host(), nil)
}

// URL returns the server's base URL.
func (c *Client) URL() *url.URL {
	u := *c.base
	return &u
}

func newTransport(headerTimeout time.Duration) *http.Transport {
	return &http.Transport{
		// As the official client (http.DefaultClient) does, so an OLLAMA_HOST
		// behind a proxy keeps working; loopback addresses bypass it.
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
}

// Version returns the server's version. As a liveness probe, a context
// deadline counts as unreachable too (see mapError).
func (c *Client) Version(ctx context.Context) (string, error) {
	v, err := c.api.Version(ctx)
	if err != nil {
		return "", c.mapError(ctx, "version", "", err)
	}
	return v, nil
}

// List returns the installed models (GET /api/tags); it loads nothing.
// The answer is decoded here rather than through the pinned api client,
// whose types predate capabilities and details.context_length (v0.30+).
func (c *Client) List(ctx context.Context) ([]serving.Installed, error) {
	body, err := c.get(ctx, "/api/tags")
	if err != nil {
		return nil, c.mapError(ctx, "list", "", err)
	}
	out, err := decodeTags(body)
	if err != nil {
		return nil, fmt.Errorf("ollama list at %s: %w", c.base, err)
	}
	for _, m := range out {
		if m.Digest != "" {
			c.fileSizes.Store(m.Digest, m.SizeBytes)
		}
	}
	return out, nil
}

// maxBody bounds what get reads: a /api/tags answer is about 1 KiB per
// model, so this leaves room for tens of thousands.
const maxBody = 64 << 20

// get fetches path and returns the body of a 2xx answer; any other status
// comes back as an api.StatusError, as the official client reports it, so
// mapError treats both alike.
func (c *Client) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.JoinPath(path).String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= http.StatusBadRequest {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e) // a non-JSON error body leaves the status text
		return nil, api.StatusError{StatusCode: resp.StatusCode, Status: resp.Status, ErrorMessage: e.Error}
	}
	return body, nil
}

// Show returns a model's metadata (POST /api/show, verbose so arrays such as
// per-layer head_count_kv are not truncated to null); it loads nothing.
func (c *Client) Show(ctx context.Context, name string) (serving.Details, error) {
	// A verbose answer carries the whole vocabulary (hundreds of kilobytes
	// per model, seconds for a large library), which the estimator does not
	// need. Ask without it first and again verbosely only when an array the
	// estimator might read (per-layer head counts, sliding-window patterns)
	// came back truncated to null.
	resp, err := c.api.Show(ctx, &api.ShowRequest{Model: name})
	if err == nil && truncated(resp.ModelInfo) {
		resp, err = c.api.Show(ctx, &api.ShowRequest{Model: name, Verbose: true})
	}
	if err != nil {
		return serving.Details{}, c.mapError(ctx, "show", name, err)
	}
	return detailsFromShow(name, resp), nil
}

// truncated reports whether a non-verbose model_info left out an array
// other than the tokenizer's.
func truncated(info map[string]any) bool {
	for k, v := range info {
		if v == nil && !strings.HasPrefix(k, "tokenizer.") {
			return true
		}
	}
	return false
}

// detailsFromShow converts a /api/show answer. Digest stays empty: Ollama
// 0.17's show answer carries none (List has it).
func detailsFromShow(name string, resp *api.ShowResponse) serving.Details {
	files, _ := prefetch.ModelPaths(resp.Modelfile) // none for a model without local files
	d := serving.Details{
		Files:         files,
		Name:          name,
		Family:        resp.Details.Family,
		Families:      resp.Details.Families,
		Format:        resp.Details.Format,
		ParameterSize: resp.Details.ParameterSize,
		Quantization:  resp.Details.QuantizationLevel,
		NumCtx:        numCtxParam(resp.Parameters),
		Meta: estimate.Model{
			KV:          resp.ModelInfo,
			ProjectorKV: resp.ProjectorInfo,
		},
	}
	for _, cp := range resp.Capabilities {
		d.Capabilities = append(d.Capabilities, string(cp))
	}
	if arch, ok := resp.ModelInfo["general.architecture"].(string); ok {
		d.Meta.Arch = arch
	}
	if len(resp.Tensors) > 0 {
		d.Meta.Tensors = make([]estimate.Tensor, len(resp.Tensors))
		for i, t := range resp.Tensors {
			d.Meta.Tensors[i] = estimate.Tensor{Name: t.Name, Type: t.Type, Shape: t.Shape}
		}
	}
	return d
}

// numCtxLine matches the num_ctx line of /api/show's parameters text, which
// Ollama formats per parameter and line as "%-*s %#v" ("num_ctx    8192").
// %#v prints a float64 from JSON, so a million comes out as "1e+06".
var numCtxLine = regexp.MustCompile(`(?m)^\s*num_ctx\s+"?([0-9.eE+-]+)"?\s*$`)

// numCtxParam returns the model's num_ctx parameter, 0 if it has none or it
// is not a positive whole number.
func numCtxParam(params string) int {
	m := numCtxLine.FindStringSubmatch(params)
	if m == nil {
		return 0
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil || f < 1 || f > math.MaxInt32 || f != math.Trunc(f) {
		return 0
	}
	return int(f)
}

// keepForever is keep_alive -1: the model stays until unloaded.
var keepForever = api.Duration{Duration: -1}

// Load loads a model and keeps it loaded (keep_alive -1) without generating:
// /api/generate with an empty prompt, or /api/embed with no input for
// embedding-only models (they refuse /api/generate). It returns when the
// server has the model loaded; how long that may take is up to ctx.
func (c *Client) Load(ctx context.Context, req serving.LoadRequest) error {
	opts := map[string]any{}
	if req.NumCtx > 0 {
		opts["num_ctx"] = req.NumCtx
	}
	began := time.Now()
	var err error
	if req.Embedding {
		_, err = c.load.Embed(ctx, &api.EmbedRequest{
			Model:     req.Name,
			KeepAlive: &keepForever,
			Options:   opts,
		})
	} else {
		err = c.load.Generate(ctx, &api.GenerateRequest{
			Model:     req.Name,
			KeepAlive: &keepForever,
			Options:   opts,
		}, func(api.GenerateResponse) error { return nil })
	}
	if err != nil {
		return c.mapError(ctx, "load", req.Name, err)
	}
	c.log.Debug("loaded", "model", req.Name, "num_ctx", req.NumCtx, "embedding", req.Embedding, "took", time.Since(began))
	return nil
}

// Pull downloads a model through the server (POST /api/pull), calling
// progress with each update. It has no header deadline (the client that
// loads has none): a pull takes as long as the download, and ctx ends it;
// Ollama then stops downloading and installs nothing.
func (c *Client) Pull(ctx context.Context, req serving.PullRequest, progress func(serving.PullProgress)) error {
	if !model.ParseName(req.Name).IsValid() {
		return fmt.Errorf("ollama pull %q: not a model name (such as llama3.2:3b or registry.example:5000/team/model:tag): %w",
			req.Name, serving.ErrModelUnknown)
	}
	succeeded := false
	err := c.load.Pull(ctx, &api.PullRequest{Model: req.Name, Insecure: req.Insecure}, func(p api.ProgressResponse) error {
		succeeded = p.Status == "success"
		progress(serving.PullProgress{Status: p.Status, Digest: p.Digest, Total: nonNegative(p.Total), Completed: nonNegative(p.Completed)})
		return nil
	})
	// The api client ends quietly when the stream breaks (a cancel, the
	// server gone): only "success" says the model is installed.
	if err == nil && !succeeded {
		err = ctx.Err()
		if err == nil {
			err = fmt.Errorf("the answer ended before the pull did: %w", io.ErrUnexpectedEOF)
		}
	}
	if err != nil {
		if isNoSuchManifest(err.Error()) {
			return &runtimeError{msg: fmt.Sprintf("ollama pull %q: %v (no such model in its registry)", req.Name, err),
				errs: []error{serving.ErrModelUnknown, err}}
		}
		return c.mapError(ctx, "pull", req.Name, err)
	}
	return nil
}

// Unload asks the server to unload a model (empty /api/generate with
// keep_alive 0) and waits until /api/ps no longer lists it. Ollama answers
// the request at once and stops the runner a moment later; a model that is
// serving a request goes only when that request ends. Unloading a model that
// is not loaded succeeds at once.
func (c *Client) Unload(ctx context.Context, name string) error {
	began := time.Now()
	if err := c.requestUnload(ctx, name); err != nil {
		return err
	}
	poll := time.NewTicker(c.pollEvery)
	defer poll.Stop()
	lastSent := time.Now()
	for {
		running, err := c.Running(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %q to unload: %w", name, err)
		}
		if !containsModel(running, name) {
			c.log.Debug("unloaded", "model", name, "took", time.Since(began))
			return nil
		}
		if time.Since(lastSent) >= c.resendEvery {
			if err := c.requestUnload(ctx, name); err != nil {
				return err
			}
			lastSent = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q to unload (%s): %w", name, time.Since(began).Round(time.Millisecond), ctx.Err())
		case <-poll.C:
		}
	}
}

func (c *Client) requestUnload(ctx context.Context, name string) error {
	err := c.api.Generate(ctx, &api.GenerateRequest{
		Model:     name,
		KeepAlive: &api.Duration{Duration: 0},
	}, func(api.GenerateResponse) error { return nil })
	if err != nil {
		return c.mapError(ctx, "unload", name, err)
	}
	return nil
}

// containsModel reports whether name is among the running models, comparing
// as Ollama does: "tiny" is "tiny:latest", case-insensitively.
func containsModel(running []serving.Running, name string) bool {
	for _, r := range running {
		if sameModel(r.Name, name) {
			return true
		}
	}
	return false
}

func sameModel(a, b string) bool {
	if a == b {
		return true
	}
	na, nb := model.ParseName(a), model.ParseName(b)
	if !na.IsValid() || !nb.IsValid() {
		return false
	}
	return na.EqualFold(nb)
}

// Running returns the loaded models (GET /api/ps). A model the server
// lists before its load has finished is marked Loading (see markLoading).
func (c *Client) Running(ctx context.Context) ([]serving.Running, error) {
	resp, err := c.api.ListRunning(ctx)
	if err != nil {
		return nil, c.mapError(ctx, "ps", "", err)
	}
	out := make([]serving.Running, 0, len(resp.Models))
	for _, m := range resp.Models {
		out = append(out, serving.Running{
			Name:          m.Name,
			Digest:        m.Digest,
			SizeBytes:     nonNegative(m.Size),
			VRAMBytes:     nonNegative(m.SizeVRAM),
			ContextLength: m.ContextLength,
			ExpiresAt:     m.ExpiresAt,
		})
	}
	if err := c.markLoading(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// maybeLoading: size and size_vram equal and non-zero, which a finished
// load shows only at full GPU offload.
func maybeLoading(r serving.Running) bool {
	return r.SizeBytes > 0 && r.SizeBytes == r.VRAMBytes && r.Digest != ""
}

// markLoading sets Loading on the models whose sizes are their file's size.
// From v0.30 Ollama lists a model as soon as it starts llama-server and,
// until the server has logged its buffers, reports the file size as both
// size and size_vram (llm/llama_server.go MemorySize). A finished load
// reports buffers: weights plus KV cache and compute on a GPU (never the
// file's size, which includes the GGUF header and metadata), or size_vram
// 0 on a CPU. Older servers list a model with its final sizes, so nothing
// is marked there. Buffers parsed halfway through a load cannot be told
// from final ones; Ollama from v0.32.15 (#17376) answers /api/ps only once
// the load has finished, so it never shows them.
//
// File sizes come from /api/tags, remembered by digest; only a candidate
// whose digest has not been listed yet costs a call.
func (c *Client) markLoading(ctx context.Context, running []serving.Running) error {
	listed := false
	for i, r := range running {
		if !maybeLoading(r) {
			continue
		}
		size, ok := c.fileSizes.Load(r.Digest)
		if !ok && !listed {
			if _, err := c.List(ctx); err != nil {
				return fmt.Errorf("telling loaded from loading models: %w", err)
			}
			listed = true
			size, ok = c.fileSizes.Load(r.Digest)
		}
		running[i].Loading = ok && size.(uint64) == r.SizeBytes
	}
	return nil
}

func nonNegative(n int64) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n)
}
