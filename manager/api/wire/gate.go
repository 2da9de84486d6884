package wire

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// BodyGate bounds the bytes of request bodies read whole at once, across
// all requests: a body is read into memory and parsed (a few times its
// size while it is: the parsed request, the one forwarded), so forty
// concurrent 31 MiB bodies used to take 4.5 GB. A request waits a moment
// for room, then is refused with 503 and Retry-After; bodies that stream
// through (blob uploads, pass-through) do not count.
type BodyGate struct {
	sem  *semaphore.Weighted
	size int64
}

// DefaultBodiesInFlight is the default gate: four of the largest bodies
// the proxy takes (32 MiB) at once, any number of small ones.
const DefaultBodiesInFlight = 128 << 20

// gateWait is how long a body waits for room before it is refused.
const gateWait = 5 * time.Second

// NewBodyGate lets size bytes of bodies in at once.
func NewBodyGate(size int64) *BodyGate {
	return &BodyGate{sem: semaphore.NewWeighted(size), size: size}
}

// Busy marks a request refused for want of room (503).
type Busy struct{ Err error }

func (b Busy) Error() string { return b.Err.Error() }
func (b Busy) Unwrap() error { return b.Err }

// ReadBody reads r's body as ReadBody does, once the gate has room for it:
// its announced size, or limit when it announced none (chunked, or
// compressed: what it decompresses to is not known). release gives the
// room back once the body and what was parsed from it are no longer used;
// it is safe to call more than once. A nil gate bounds nothing.
func (g *BodyGate) ReadBody(w http.ResponseWriter, r *http.Request, limit int64) (b []byte, release func(), err error) {
	if g == nil {
		b, err = ReadBody(w, r, limit)
		return b, func() {}, err
	}
	n := limit
	if cl := r.ContentLength; cl >= 0 && r.Header.Get("Content-Encoding") == "" {
		if cl > limit {
			return nil, func() {}, fmt.Errorf("request body of %d bytes is larger than %d bytes: %w", cl, limit, &http.MaxBytesError{Limit: limit})
		}
		n = cl
	}
	n = min(n, g.size) // a body larger than the gate goes alone
	ctx, cancel := context.WithTimeout(r.Context(), gateWait)
	err = g.sem.Acquire(ctx, n)
	cancel()
	if err != nil {
		if r.Context().Err() != nil {
			return nil, func() {}, r.Context().Err() // the client left
		}
		w.Header().Set("Retry-After", "2")
		return nil, func() {}, Busy{fmt.Errorf("%s of request bodies are being read already; retry in a moment: %w", fmtMiB(g.size), err)}
	}
	release = sync.OnceFunc(func() { g.sem.Release(n) })
	b, err = ReadBody(w, r, limit)
	if err != nil {
		release()
	}
	return b, release, err
}

func fmtMiB(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }
