package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// Deadlines on every request. A streamed generation runs for minutes and a
// blob upload as long as the model file takes, so the server has no
// whole-request ReadTimeout or WriteTimeout; instead:
//
//   - Writes: each write and flush must reach the client within
//     WriteTimeout, extended at every chunk. A client that stops reading
//     fails its request: the handler returns and its lease on the model
//     ends, so the model is free to evict and yields and unloads do not
//     wait on it. Where the system tells the receive window the client
//     advertises (Linux), a window that has not grown for WriteTimeout
//     while answers keep coming is a client that stopped reading, however
//     much its kernel still buffers (a slow generation fills 200 KiB of
//     socket buffers in minutes); elsewhere it shows once the buffers are
//     full and a write has waited WriteTimeout.
//   - Bodies: the whole body must arrive within the body deadline from the
//     request's start; a blob upload (gigabytes) must only keep moving,
//     each read within it. A body that stops coming fails with 408 and the
//     connection is closed after the answer: the server would otherwise
//     wait, without a deadline, for the rest of a body it had not read
//     before sending anything.
//
// The header read and idle keep-alive connections have the server's own
// deadlines (ReadHeaderTimeout, IdleTimeout).

const defaultWriteTimeout = 30 * time.Second

// deadlines wraps one request's writer and body.
type deadlines struct {
	http.ResponseWriter
	rc    *http.ResponseController
	write time.Duration
	// manual: the handler sets its own write deadlines (event streams).
	manual bool
	body   *deadlineBody // nil without a body
	watch  stallWatch
}

type connKey struct{}

// withConn keeps a connection in its requests' context (http.Server's
// ConnContext), for the stall watch.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// withDeadlines applies the write and body deadlines to one request; done
// must run when the handler returns. The request it returns carries the
// body's state (wire.BodyFailed).
func withDeadlines(w http.ResponseWriter, r *http.Request, write, body time.Duration) (http.ResponseWriter, *http.Request, func()) {
	d := &deadlines{ResponseWriter: w, rc: http.NewResponseController(w), write: write}
	d.watch.conn, _ = r.Context().Value(connKey{}).(net.Conn)
	d.watch.limit = write
	d.extend()
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		state := &wire.BodyState{}
		r = r.WithContext(wire.WithBodyState(r.Context(), state))
		b := &deadlineBody{ReadCloser: r.Body, rc: d.rc, w: w, limit: body, state: state}
		if strings.HasPrefix(r.URL.Path, "/api/blobs/") {
			b.idle = true // each read within the limit, however long the whole
		} else {
			b.by = time.Now().Add(body)
		}
		_ = d.rc.SetReadDeadline(b.next())
		d.body = b
		r.Body = b
	}
	return d, r, d.extend
}

func (d *deadlines) extend() {
	if !d.manual {
		_ = d.rc.SetWriteDeadline(time.Now().Add(d.write))
	}
}

func (d *deadlines) WriteHeader(code int) {
	d.extend()
	if d.body != nil {
		d.body.answering()
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *deadlines) Write(b []byte) (int, error) {
	if err := d.watch.check(time.Now()); err != nil {
		return 0, err
	}
	d.extend()
	if d.body != nil {
		d.body.answering()
	}
	return d.ResponseWriter.Write(b)
}

// FlushError is what http.ResponseController.Flush calls (the reverse
// proxy flushes every chunk this way).
func (d *deadlines) FlushError() error {
	if err := d.watch.check(time.Now()); err != nil {
		return err
	}
	d.extend()
	return d.rc.Flush()
}

func (d *deadlines) Flush() { _ = d.FlushError() }

// SetWriteDeadline: a handler that sets its own deadline keeps it.
func (d *deadlines) SetWriteDeadline(t time.Time) error {
	d.manual = true
	return d.rc.SetWriteDeadline(t)
}

func (d *deadlines) SetReadDeadline(t time.Time) error { return d.rc.SetReadDeadline(t) }

func (d *deadlines) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// deadlineBody reads a request body within its deadline.
type deadlineBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	w     http.ResponseWriter
	limit time.Duration
	by    time.Time // the whole body by then; zero for idle
	idle  bool      // each read within limit
	state *wire.BodyState

	mu       sync.Mutex
	finished bool // read to its end, or failed
}

func (b *deadlineBody) next() time.Time {
	if b.idle {
		return time.Now().Add(b.limit)
	}
	return b.by
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.idle && !b.finished {
		_ = b.rc.SetReadDeadline(b.next())
	}
	b.mu.Unlock()
	n, err := b.ReadCloser.Read(p)
	if err == nil {
		return n, nil
	}
	b.mu.Lock()
	b.finished = true
	b.mu.Unlock()
	if errors.Is(err, io.EOF) {
		return n, err
	}
	// What is left of the body will not be read: the connection cannot
	// serve another request, and the deadline stays so that the server's
	// own read of the rest ends at once.
	b.w.Header().Set("Connection", "close")
	if errors.Is(err, os.ErrDeadlineExceeded) {
		how := fmt.Sprintf("within %s of the request's start", b.limit)
		if b.idle {
			how = fmt.Sprintf("for %s", b.limit)
		}
		err = wire.BodyTimeout{Err: fmt.Errorf("the request body did not arrive: nothing came %s: %w", how, err)}
		b.state.Fail(err)
	}
	return n, err
}

// answering: the handler answers. The rest of a body it has not read to
// its end is read by the server before the answer goes out, but only what
// has already come: the deadline passes now, so a client that is still
// sending (or pretends to) gets its answer at once and the connection is
// closed after it.
func (b *deadlineBody) answering() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	_ = b.rc.SetReadDeadline(time.Now())
}

// errStalled ends the answer to a client that stopped reading.
var errStalled = errors.New("the client stopped reading its answer")

// stallWatch follows the receive window a client advertises while it is
// answered: a client that reads keeps it open (it grows back as it
// reads); one that stopped reading lets it shrink as the data comes in.
type stallWatch struct {
	conn  net.Conn // nil: not watched
	limit time.Duration
	// widest is the widest window seen, last the last one, grew when it
	// last grew or was at its widest.
	widest, last uint32
	grew         time.Time
}

// check is called before each write: an error when the window has not
// grown for the limit.
func (s *stallWatch) check(now time.Time) error {
	if s.conn == nil {
		return nil
	}
	w, ok := peerWindow(s.conn)
	if !ok || s.grew.IsZero() && w == 0 {
		s.conn = nil // not reported (a fresh connection's window is never 0)
		return nil
	}
	switch {
	case s.grew.IsZero() || w > s.last || w >= s.widest:
		s.grew = now
	case now.Sub(s.grew) > s.limit:
		return fmt.Errorf("%w: its receive window has not opened for %s", errStalled, s.limit)
	}
	s.widest, s.last = max(s.widest, w), w
	return nil
}
