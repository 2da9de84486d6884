package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/ollama/ollama/openai"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/evict"
)

// Error codes in {"error": ..., "code": ...} answers of the management API.
// The client maps them back to the manager's sentinel errors.
const (
	CodeBadRequest     = "bad_request"
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
	codeClientGone     = "canceled"
	statusClientGone   = 499 // nginx's "client closed request"; nobody reads it
	maxUpstreamErrMsg  = 64 << 10
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
	{[]error{context.Canceled}, statusClientGone, codeClientGone},
}

// classify returns the status and code for an error from the manager.
func classify(err error) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, CodeTooLarge
	}
	var bad badRequest
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

func isAll(err error, targets []error) bool {
	for _, t := range targets {
		if !errors.Is(err, t) {
			return false
		}
	}
	return true
}

// badRequest marks an error in what the client sent.
type badRequest struct{ err error }

func (b badRequest) Error() string { return b.err.Error() }
func (b badRequest) Unwrap() error { return b.err }

func badRequestf(format string, a ...any) error { return badRequest{fmt.Errorf(format, a...)} }

// keeperError is the management API's error body.
type keeperError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may have left; nothing to do
}

func writeKeeperError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, keeperError{Error: msg, Code: code})
}

func (s *Server) keeperFail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	s.logFailure(r, status, err)
	writeKeeperError(w, status, code, err.Error())
}

// writeOllamaError answers the way Ollama does: {"error": "..."}.
func writeOllamaError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// writeOpenAIError answers the way OpenAI (and Ollama's /v1) does.
func writeOpenAIError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, openai.NewError(status, msg))
}

func (s *Server) logFailure(r *http.Request, status int, err error) {
	if status == statusClientGone {
		s.log.Debug("client left", "path", r.URL.Path, "err", err)
		return
	}
	lvl := slog.LevelInfo // the client's mistakes; ours and Ollama's warn
	if status >= 500 {
		lvl = slog.LevelWarn
	}
	s.log.Log(r.Context(), lvl, "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
}

// readBody reads a request body up to limit bytes, with a read deadline so
// that a client trickling bytes cannot hold a handler forever.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("request body larger than %d bytes: %w", limit, err)
		}
		return nil, badRequestf("reading request body: %w", err)
	}
	return b, nil
}
