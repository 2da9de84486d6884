package ollama

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/ollama/ollama/api"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// mapError turns an error from the api package into one the manager can
// tell apart with errors.Is, keeping the original wrapped:
//
//   - the caller's context ended: the context error, wrapped as is, because
//     the caller gave up, not the server (except for version, the liveness
//     probe, where a deadline means the server did not answer in time and
//     is reported as unreachable as well);
//   - no connection, reset, transport timeout: serving.ErrUnreachable;
//   - 404, or a "model ... not found" message: serving.ErrModelUnknown,
//     naming the model;
//   - any other status: its code and the server's message.
func (c *Client) mapError(ctx context.Context, op, name string, err error) error {
	what := "ollama " + op
	if name != "" {
		what = fmt.Sprintf("ollama %s %q", op, name)
	}

	if ctxErr := ctx.Err(); ctxErr != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		if op == "version" && errors.Is(ctxErr, context.DeadlineExceeded) {
			return &runtimeError{
				msg:  fmt.Sprintf("ollama at %s unreachable: no answer to %s before the deadline", c.base, op),
				errs: []error{serving.ErrUnreachable, err},
			}
		}
		return fmt.Errorf("%s: %w", what, err)
	}

	var serr api.StatusError
	if errors.As(err, &serr) {
		msg := serr.ErrorMessage
		if msg == "" {
			msg = http.StatusText(serr.StatusCode)
		}
		if name != "" && (serr.StatusCode == http.StatusNotFound || isModelNotFound(msg)) {
			return &runtimeError{msg: fmt.Sprintf("%s: %s", what, msg), errs: []error{serving.ErrModelUnknown, err}}
		}
		return &runtimeError{msg: fmt.Sprintf("%s: status %d: %s", what, serr.StatusCode, msg), errs: []error{err}}
	}

	var aerr api.AuthorizationError
	if errors.As(err, &aerr) {
		return fmt.Errorf("%s: unauthorized (status %d): %w", what, aerr.StatusCode, err)
	}

	if isUnreachable(err) {
		// The *url.Error repeats the method and URL; say the URL once.
		cause := err
		var uerr *url.Error
		if errors.As(err, &uerr) {
			cause = uerr.Err
		}
		return &runtimeError{
			msg:  fmt.Sprintf("ollama at %s unreachable: %s: %v", c.base, op, cause),
			errs: []error{serving.ErrUnreachable, err},
		}
	}

	// A streamed endpoint reports an error that arrives after the headers
	// as a plain error carrying the server's message.
	if name != "" && isModelNotFound(err.Error()) {
		return &runtimeError{msg: fmt.Sprintf("%s: %v", what, err), errs: []error{serving.ErrModelUnknown, err}}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// runtimeError is an error whose message reads once while it wraps both a
// manager sentinel and the original error (fmt.Errorf with two %w would
// print the sentinel's text in the middle of the message).
type runtimeError struct {
	msg  string
	errs []error
}

func (e *runtimeError) Error() string   { return e.msg }
func (e *runtimeError) Unwrap() []error { return e.errs }

// isModelNotFound matches the messages Ollama writes for a model it does not
// have: "model 'x' not found" and `model "x" not found, try pulling it
// first`. It is deliberately narrow: a load failing on a missing file
// ("... error loading model: ... not found") is not an unknown model.
func isModelNotFound(msg string) bool {
	msg = strings.ToLower(strings.TrimSpace(msg))
	return strings.HasPrefix(msg, "model ") && strings.Contains(msg, " not found")
}

// isNoSuchManifest matches what a pull of a name its registry does not
// have ends with: "pull model manifest: file does not exist" (the
// registry's 404, as Ollama words it).
func isNoSuchManifest(msg string) bool {
	msg = strings.ToLower(msg)
	return strings.Contains(msg, "pull model manifest") && strings.Contains(msg, "file does not exist")
}

// isUnreachable reports whether err means the server could not be reached
// or dropped the connection: every error http.Client.Do returns is a
// *url.Error (dial, TLS, headers), and a body cut off midway shows up as a
// network error or an unexpected EOF.
func isUnreachable(err error) bool {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return true
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}
