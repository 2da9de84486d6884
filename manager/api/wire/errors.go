package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/evict"
)

// Error codes in {"error": ..., "code": ...} answers of the management API.
// The client maps them back to the manager's sentinel errors.
const (
	CodeBadRequest     = "bad_request"
	CodeBodyTimeout    = "body_timeout"
	CodeBusy           = "busy"
	CodeTooLarge       = "too_large"
	CodeUnauthorized   = "unauthorized"
	CodeForbidden      = "forbidden"
	CodeNotFound       = "not_found"
	CodeModelUnknown   = "model_not_found"
	CodeUnknownTask    = "unknown_task"
	CodeUnknownRole    = "unknown_role"
	CodeNoCandidate    = "no_candidate"
	CodeNeverFits      = "never_fits"
	CodeNoRoom         = "no_room"
	CodePaused         = "paused"
	CodeYielded        = "yielded"
	CodeSpilled        = "spilled"
	CodeLoadTimeout    = "load_timeout"
	CodeTimedOut       = "timed_out"
	CodeUnreachable    = "ollama_unreachable"
	CodeLoadFailed     = "load_failed"
	CodeStopped        = "stopped"
	CodeTimeout        = "timeout"
	CodeTooManyStreams = "too_many_streams"
	CodeVersion        = "version_mismatch"
	CodeInternal       = "internal"
	CodeClientGone     = "canceled"
	// StatusClientGone is nginx's "client closed request": nobody reads it,
	// so handlers answer nothing with it.
	StatusClientGone = 499
)

// errorKinds maps the manager's errors to a status and a code, most
// specific first (a load failure may wrap an unreachable server).
// An error matches a kind when it is every one of the kind's errors; the
// client maps the code back to the same errors.
var errorKinds = []struct {
	errs   []error
	status int
	code   string
}{
	{[]error{manager.ErrModelUnknown}, http.StatusNotFound, CodeModelUnknown},
	{[]error{manager.ErrUnknownTask}, http.StatusBadRequest, CodeUnknownTask},
	{[]error{manager.ErrUnknownRole}, http.StatusBadRequest, CodeUnknownRole},
	{[]error{manager.ErrNoCandidate}, http.StatusNotFound, CodeNoCandidate},
	// Larger than the whole budget: no eviction can help, ever.
	{[]error{manager.ErrNeverFits}, http.StatusInsufficientStorage, CodeNeverFits},
	// Fits the budget but not now: retrying later can help.
	{[]error{evict.ErrNoRoom}, http.StatusConflict, CodeNoRoom},
	{[]error{manager.ErrPaused}, http.StatusConflict, CodePaused},
	// The GPU was given back: nothing loads until restore.
	{[]error{manager.ErrYielded}, http.StatusConflict, CodeYielded},
	// With gpu_only, a model Ollama would put partly on the CPU.
	{[]error{manager.ErrSpilled}, http.StatusConflict, CodeSpilled},
	{[]error{manager.ErrUnreachable}, http.StatusBadGateway, CodeUnreachable},
	// The server did not finish in load_timeout: a load (which is a failed
	// load too) or an unload.
	{[]error{manager.ErrTimedOut, manager.ErrLoadFailed}, http.StatusGatewayTimeout, CodeLoadTimeout},
	{[]error{manager.ErrTimedOut}, http.StatusGatewayTimeout, CodeTimedOut},
	{[]error{manager.ErrLoadFailed}, http.StatusBadGateway, CodeLoadFailed},
	{[]error{manager.ErrStopped}, http.StatusServiceUnavailable, CodeStopped},
	{[]error{context.DeadlineExceeded}, http.StatusGatewayTimeout, CodeTimeout},
	{[]error{context.Canceled}, StatusClientGone, CodeClientGone},
}

// Classify returns the status and code for an error from the manager.
func Classify(err error) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, CodeTooLarge
	}
	var slow BodyTimeout
	if errors.As(err, &slow) {
		return http.StatusRequestTimeout, CodeBodyTimeout
	}
	var busy Busy
	if errors.As(err, &busy) {
		return http.StatusServiceUnavailable, CodeBusy
	}
	var bad BadRequest
	if errors.As(err, &bad) {
		return http.StatusBadRequest, CodeBadRequest
	}
	for _, k := range errorKinds {
		if isAll(err, k.errs) {
			return k.status, k.code
		}
	}
	return http.StatusInternalServerError, CodeInternal
}

// CodeErrors are the sentinel errors a code stands for: the manager's,
// from the same table Classify reads, so that errors.Is(err,
// manager.ErrNeverFits) works across the wire.
func CodeErrors(code string) []error {
	for _, k := range errorKinds {
		if k.code == code {
			return k.errs
		}
	}
	return nil
}

func isAll(err error, targets []error) bool {
	for _, t := range targets {
		if !errors.Is(err, t) {
			return false
		}
	}
	return true
}

// BadRequest marks an error in what the client sent.
type BadRequest struct{ Err error }

func (b BadRequest) Error() string { return b.Err.Error() }
func (b BadRequest) Unwrap() error { return b.Err }

// BodyTimeout marks a request body that did not arrive in time (408): the
// client sent less than it announced, or stopped sending.
type BodyTimeout struct{ Err error }

func (b BodyTimeout) Error() string { return b.Err.Error() }
func (b BodyTimeout) Unwrap() error { return b.Err }

type bodyStateKey struct{}

// BodyState is where the server notes how a request's body ended, for a
// handler that does not read the body itself (a reverse proxy sees only
// its context cancelled when the body stops coming).
type BodyState struct {
	mu  sync.Mutex
	err error
}

// Fail notes why the body could not be read.
func (b *BodyState) Fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

// WithBodyState returns ctx carrying b.
func WithBodyState(ctx context.Context, b *BodyState) context.Context {
	return context.WithValue(ctx, bodyStateKey{}, b)
}

// BodyFailed is why the request's body could not be read (a BodyTimeout),
// nil when it could or nothing noted it.
func BodyFailed(ctx context.Context) error {
	b, _ := ctx.Value(bodyStateKey{}).(*BodyState)
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// BadRequestf is a BadRequest with a formatted message.
func BadRequestf(format string, a ...any) error { return BadRequest{fmt.Errorf(format, a...)} }

// ErrorBody is the management API's error answer.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// WriteError answers with the management API's error body.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, ErrorBody{Error: msg, Code: code})
}

// BodyReadTimeout bounds the arrival of a whole request body (and of each
// part of a blob upload), from the request's start, so that a client
// trickling bytes cannot hold a handler forever. The server applies it to
// every request (manager/api/deadline.go).
const BodyReadTimeout = 60 * time.Second

// ReadBody reads a request body up to limit bytes, into one buffer of the
// announced size where the client announced one.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= limit {
		// ReadFrom wants MinRead bytes free to see the end without growing.
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		var slow BodyTimeout
		switch {
		case errors.As(err, &mbe):
			return nil, fmt.Errorf("request body larger than %d bytes: %w", limit, err)
		case errors.As(err, &slow):
			return nil, err
		}
		return nil, BadRequestf("reading request body: %w", err)
	}
	return buf.Bytes(), nil
}
