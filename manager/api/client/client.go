// Package client talks to a running VRAM Keeper through its management
// API: Client makes one call per endpoint; Remote is the instance with the
// manager's own shape (keeper.Keeper), for the window and the command line.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// DialTimeout is how long Dial waits for a running instance: short, since
// the CLI falls back to running in-process when none answers.
const DialTimeout = 300 * time.Millisecond

// Errors the client returns besides the manager's own sentinels.
var (
	// ErrNotRunning: nothing (or something other than VRAM Keeper) answers.
	ErrNotRunning = errors.New("no VRAM Keeper instance answers")
	// ErrUnauthorized: the instance wants a token, or another one.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrBadRequest: the instance refused the request as malformed.
	ErrBadRequest = errors.New("bad request")
	// ErrVersionMismatch: the instance speaks another version of the API
	// (another vramkeeper release).
	ErrVersionMismatch = errors.New("another version of VRAM Keeper")
	// ErrOtherInstance: the VRAM Keeper that answers manages another
	// Ollama or state folder than the one wanted (two instances were given
	// one listen address).
	ErrOtherInstance = errors.New("another VRAM Keeper answers there")
)

// codeErrors maps the API's error codes back to sentinel errors, so that
// errors.Is(err, manager.ErrNeverFits) works across the wire: the
// server's own here, the manager's from wire.CodeErrors.
func codeErrors(code string) []error {
	switch code {
	case wire.CodeUnauthorized:
		return []error{ErrUnauthorized}
	case wire.CodeBadRequest, wire.CodeTooLarge:
		return []error{ErrBadRequest}
	case wire.CodeVersion:
		return []error{ErrVersionMismatch}
	}
	return wire.CodeErrors(code)
}

// Error is an error answer from the API. It unwraps to the sentinels its
// code stands for.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d from the running instance)", e.Message, e.Status)
}

func (e *Error) Unwrap() []error { return codeErrors(e.Code) }

// Client talks to a running instance's management API; the CLI uses it so
// that the tray and the CLI share one state.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// Dial returns a client for the instance at baseURL ("http://127.0.0.1:11435"
// or a bare "127.0.0.1:11435") after checking, within DialTimeout, that
// VRAM Keeper answers there. The error wraps ErrNotRunning when nothing
// does, and ErrUnauthorized when the token is missing or wrong.
func Dial(ctx context.Context, baseURL, token string) (*Client, error) {
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("vramkeeper address %q: %w", baseURL, err)
	}
	c := &Client{
		base:  u,
		token: token,
		http: &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			ResponseHeaderTimeout: 0, // a load may take minutes; calls are bounded by ctx
			IdleConnTimeout:       30 * time.Second,
		}},
	}
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	if _, err := c.Snapshot(dctx); err != nil {
		var apiErr *Error
		switch {
		case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrVersionMismatch):
			return nil, fmt.Errorf("vramkeeper at %s: %w", u.Redacted(), err)
		case errors.As(err, &apiErr):
			return nil, fmt.Errorf("%s answers but not as VRAM Keeper: %w: %w", u.Redacted(), ErrNotRunning, err)
		default:
			return nil, fmt.Errorf("%s: %w: %w", u.Redacted(), ErrNotRunning, err)
		}
	}
	return c, nil
}

// Instance says which instance answers and what it manages (GET
// /keeper/v1/instance).
func (c *Client) Instance(ctx context.Context) (wire.Instance, error) {
	var i wire.Instance
	err := c.do(ctx, http.MethodGet, "instance", nil, &i)
	return i, err
}

// Verify checks that the instance manages the Ollama and state folder of
// want; the error is an *OtherInstanceError (wrapping ErrOtherInstance)
// when it manages others, or does not say.
func (c *Client) Verify(ctx context.Context, want wire.Instance) (wire.Instance, error) {
	got, err := c.Instance(ctx)
	var apiErr *Error
	switch {
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
		return got, &OtherInstanceError{At: c.base.Host, Want: want}
	case err != nil:
		return got, err
	}
	if !got.Manages(want) {
		return got, &OtherInstanceError{At: c.base.Host, Got: &got, Want: want}
	}
	return got, nil
}

// OtherInstanceError: the VRAM Keeper at At is not the one wanted.
type OtherInstanceError struct {
	At string
	// Got is what it manages; nil when it does not say.
	Got  *wire.Instance
	Want wire.Instance
}

func (e *OtherInstanceError) Error() string {
	if e.Got == nil {
		return fmt.Sprintf("the VRAM Keeper on %s does not say what it manages", e.At)
	}
	return e.Got.Mismatch(e.Want)
}

func (e *OtherInstanceError) Unwrap() error { return ErrOtherInstance }

// Snapshot returns the instance's snapshot (GET /keeper/v1/status).
func (c *Client) Snapshot(ctx context.Context) (manager.Snapshot, error) {
	var s manager.Snapshot
	err := c.do(ctx, http.MethodGet, "status", nil, &s)
	return s, err
}

// Models returns every installed model.
func (c *Client) Models(ctx context.Context) ([]manager.ModelView, error) {
	var r wire.ModelsResponse
	err := c.do(ctx, http.MethodGet, "models", nil, &r)
	return r.Models, err
}

// BestModelForTask chooses (and loads) the best model for a task and role.
func (c *Client) BestModelForTask(ctx context.Context, task, role string) (manager.Choice, error) {
	var ch manager.Choice
	err := c.do(ctx, http.MethodPost, "best", wire.BestRequest{Task: task, Role: role}, &ch)
	return ch, err
}

// Plan asks what a load would do now, changing nothing (POST
// /keeper/v1/plan).
func (c *Client) Plan(ctx context.Context, req manager.PlanRequest) (manager.Plan, error) {
	var p manager.Plan
	err := c.do(ctx, http.MethodPost, "plan", req, &p)
	return p, err
}

// Load loads a model at its own context length, evicting others as the
// policy says; reason goes into the instance's history.
func (c *Client) Load(ctx context.Context, name, reason string) (manager.LoadResult, error) {
	return c.LoadAt(ctx, name, 0, reason)
}

// LoadAt is Load at a given context length (0: the model's own).
func (c *Client) LoadAt(ctx context.Context, name string, numCtx int, reason string) (manager.LoadResult, error) {
	var r manager.LoadResult
	err := c.do(ctx, http.MethodPost, modelPath(name, "load"), wire.ModelActionRequest{Reason: reason, ContextLength: numCtx}, &r)
	return r, err
}

// Yield gives the GPU back: every model is unloaded and remembered, and
// loads fail with manager.ErrYielded until Restore. It returns the models
// unloaded.
func (c *Client) Yield(ctx context.Context) ([]string, error) {
	var r wire.YieldResponse
	err := c.do(ctx, http.MethodPost, "yield", nil, &r)
	return r.Unloaded, err
}

// Restore puts back what Yield unloaded and returns the models loaded.
func (c *Client) Restore(ctx context.Context) ([]string, error) {
	var r wire.RestoreResponse
	err := c.do(ctx, http.MethodPost, "restore", nil, &r)
	return r.Restored, err
}

// Unload unloads a model.
func (c *Client) Unload(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, modelPath(name, "unload"), nil, nil)
}

// SetPinned pins or unpins a model.
func (c *Client) SetPinned(ctx context.Context, name string, pinned bool) error {
	action := "unpin"
	if pinned {
		action = "pin"
	}
	return c.do(ctx, http.MethodPost, modelPath(name, action), nil, nil)
}

// History returns the recent loads, unloads, evictions and failures.
func (c *Client) History(ctx context.Context) ([]manager.Event, error) {
	var r wire.HistoryResponse
	err := c.do(ctx, http.MethodGet, "history", nil, &r)
	return r.Events, err
}

// modelPath escapes each segment of a name but keeps its slashes, the form
// the server documents.
func modelPath(name, action string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "models/" + strings.Join(segs, "/") + "/" + action
}

// sign adds the token and the API version every request carries.
func (c *Client) sign(req *http.Request) {
	req.Header.Set(wire.VersionHeader, wire.APIVersion)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("vramkeeper %s %s: malformed answer: %w", method, path, err)
	}
	return nil
}

// send makes one request and returns the answer when it is a 200; any
// other status is an *Error with the answer's message and code.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	// path is escaped already (modelPath); JoinPath would escape it again.
	target := strings.TrimSuffix(c.base.JoinPath("keeper", "v1").String(), "/") + "/" + path
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.sign(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("vramkeeper %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var ke wire.ErrorBody
		if json.Unmarshal(b, &ke) != nil || ke.Error == "" {
			ke = wire.ErrorBody{Error: strings.TrimSpace(string(b)), Code: ""}
			if ke.Error == "" {
				ke.Error = http.StatusText(resp.StatusCode)
			}
		}
		if resp.StatusCode == http.StatusUnauthorized && ke.Code == "" {
			ke.Code = wire.CodeUnauthorized
		}
		return nil, &Error{Status: resp.StatusCode, Code: ke.Code, Message: ke.Error}
	}
	return resp, nil
}

// Pull downloads a model through the instance (POST /keeper/v1/pull),
// calling progress (may be nil) with each update; ctx ends it, and the
// instance then stops the download.
func (c *Client) Pull(ctx context.Context, req serving.PullRequest, progress func(serving.PullProgress)) error {
	resp, err := c.send(ctx, http.MethodPost, "pull", req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	succeeded := false
	for {
		var l wire.PullLine
		err := dec.Decode(&l)
		switch {
		case err == io.EOF && succeeded:
			return nil
		case err == io.EOF:
			return fmt.Errorf("vramkeeper pull %s: the answer ended before the pull did: %w", req.Name, io.ErrUnexpectedEOF)
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return fmt.Errorf("vramkeeper pull %s: %w", req.Name, err)
		case l.Error != "":
			status, _ := wire.Classify(errors.Join(codeErrors(l.Code)...))
			return &Error{Status: status, Code: l.Code, Message: l.Error}
		}
		succeeded = l.Status == "success"
		if progress != nil {
			progress(l.PullProgress)
		}
	}
}

// SetPaused pauses or resumes automatic management.
func (c *Client) SetPaused(ctx context.Context, paused bool) error {
	path := "resume"
	if paused {
		path = "pause"
	}
	return c.do(ctx, http.MethodPost, path, nil, nil)
}

// Apply changes the settings the patch names (POST /keeper/v1/settings).
func (c *Client) Apply(ctx context.Context, p manager.SettingsPatch) error {
	return c.do(ctx, http.MethodPost, "settings", p, nil)
}

// Events streams the instance's events (GET /keeper/v1/events) until ctx
// ends or the stream breaks; the channel is closed then, and the error
// that ended it is sent on errc (nil when ctx ended it).
func (c *Client) Events(ctx context.Context) (<-chan manager.Event, <-chan error, error) {
	target := strings.TrimSuffix(c.base.JoinPath("keeper", "v1").String(), "/") + "/events"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("vramkeeper events: %w", err)
	}
	c.sign(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("vramkeeper events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, nil, &Error{Status: resp.StatusCode, Message: "events: " + http.StatusText(resp.StatusCode)}
	}
	out := make(chan manager.Event)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		errc <- readEvents(ctx, resp.Body, out)
	}()
	return out, errc, nil
}

// readEvents parses Server-Sent Events: only "data:" lines matter, each
// holding one manager.Event; comments (keep-alives) and "event:" lines are
// skipped.
func readEvents(ctx context.Context, r io.Reader, out chan<- manager.Event) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue
		}
		var e manager.Event
		if err := json.Unmarshal([]byte(strings.TrimSpace(data)), &e); err != nil {
			return fmt.Errorf("vramkeeper events: malformed event: %w", err)
		}
		select {
		case out <- e:
		case <-ctx.Done():
			return nil
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("vramkeeper events: %w", err)
	}
	return fmt.Errorf("vramkeeper events: %w", io.ErrUnexpectedEOF)
}

// OpenWindow asks the desktop tray to open its window.
func (c *Client) OpenWindow(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "window", nil, nil)
}

// StartOllama asks the desktop tray to start `ollama serve`.
func (c *Client) StartOllama(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "ollama/start", nil, nil)
}
