package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// The management API: thin handlers, one manager call each.

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	wire.WriteJSON(w, http.StatusOK, s.k.Snapshot())
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	ms := s.k.Snapshot().Models
	if ms == nil {
		ms = []manager.ModelView{}
	}
	wire.WriteJSON(w, http.StatusOK, wire.ModelsResponse{Models: ms})
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, ok := s.k.Snapshot().Lookup(name)
	if !ok {
		s.keeperFail(w, r, fmt.Errorf("%q: %w", name, manager.ErrModelUnknown))
		return
	}
	wire.WriteJSON(w, http.StatusOK, v)
}

// Actions on a model; the name is everything before the last segment.
var modelActions = []string{"load", "unload", "pin", "unpin"}

func (s *Server) handleModelAction(w http.ResponseWriter, r *http.Request) {
	path := r.PathValue("name")
	i := strings.LastIndexByte(path, '/')
	if i <= 0 || !slices.Contains(modelActions, path[i+1:]) {
		wire.WriteError(w, http.StatusNotFound, wire.CodeNotFound,
			fmt.Sprintf("POST /keeper/v1/models/{name}/{action}: action must be one of %s, got %q", strings.Join(modelActions, ", "), path))
		return
	}
	name, action := path[:i], path[i+1:]
	// The body is optional; a small one is read so keep-alive works, a big
	// one refused.
	b, err := s.readBody(w, r)
	if err != nil {
		s.keeperFail(w, r, err)
		return
	}
	var req wire.ModelActionRequest
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &req); err != nil {
			s.keeperFail(w, r, wire.BadRequestf("malformed JSON body: %w", err))
			return
		}
	}
	if req.Reason == "" {
		req.Reason = "loaded through the API"
	}
	if req.ContextLength < 0 {
		s.keeperFail(w, r, wire.BadRequestf("context_length: %d is negative (0 or absent: the model's own)", req.ContextLength))
		return
	}
	ctx := r.Context()
	switch action {
	case "load":
		res, err := s.k.LoadAt(ctx, name, req.ContextLength, req.Reason)
		if err != nil {
			s.keeperFail(w, r, err)
			return
		}
		res.Evicted = wire.NonNil(res.Evicted)
		wire.WriteJSON(w, http.StatusOK, res)
	case "unload":
		if err := s.k.Unload(ctx, name); err != nil {
			s.keeperFail(w, r, err)
			return
		}
		wire.WriteJSON(w, http.StatusOK, wire.UnloadResponse{Model: s.canonical(name), Unloaded: true})
	case "pin", "unpin":
		pinned := action == "pin"
		if err := s.k.SetPinned(ctx, name, pinned); err != nil {
			s.keeperFail(w, r, err)
			return
		}
		wire.WriteJSON(w, http.StatusOK, wire.PinResponse{Model: s.canonical(name), Pinned: pinned})
	}
}

// canonical is the manager's name for a model a client named.
func (s *Server) canonical(name string) string {
	if v, ok := s.k.Snapshot().Lookup(name); ok {
		return v.Name
	}
	return name
}

func (s *Server) handleYield(w http.ResponseWriter, r *http.Request) {
	if _, err := s.readBody(w, r); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	names, err := s.k.Yield(r.Context())
	if err != nil {
		s.keeperFail(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, wire.YieldResponse{Unloaded: wire.NonNil(names)})
}

func (s *Server) handleRestore(w http.ResponseWriter, r *http.Request) {
	if _, err := s.readBody(w, r); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	names, err := s.k.Restore(r.Context())
	if err != nil {
		s.keeperFail(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, wire.RestoreResponse{Restored: wire.NonNil(names)})
}

func (s *Server) handleBest(w http.ResponseWriter, r *http.Request) {
	var req wire.BestRequest
	if err := s.decodeStrict(w, r, &req); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	if req.Task == "" {
		s.keeperFail(w, r, wire.BadRequestf(`"task" is required (one of %s)`, strings.Join(s.k.Snapshot().Tasks, ", ")))
		return
	}
	c, err := s.k.BestModelForTask(r.Context(), req.Task, req.Role)
	if err != nil {
		s.keeperFail(w, r, err)
		return
	}
	c.Evicted = wire.NonNil(c.Evicted)
	wire.WriteJSON(w, http.StatusOK, c)
}

// handlePlan answers what a load would do now, changing nothing.
func (s *Server) handlePlan(w http.ResponseWriter, r *http.Request) {
	var req manager.PlanRequest
	if err := s.decodeStrict(w, r, &req); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	if err := req.Check(); err != nil {
		s.keeperFail(w, r, wire.BadRequest{Err: err})
		return
	}
	p, err := s.k.Plan(r.Context(), req)
	if err != nil {
		s.keeperFail(w, r, err)
		return
	}
	p.Evict = wire.NonNil(p.Evict)
	wire.WriteJSON(w, http.StatusOK, p)
}

// readBody reads a management body (at most wire.MaxBody) through the
// gate that bounds the bodies read at once; the body is small and parsed
// at once, so its room is given back when it has been read.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, release, err := s.gate.ReadBody(w, r, wire.MaxBody)
	release()
	return b, err
}

// decodeStrict reads a small JSON body into v, refusing unknown fields and
// trailing data, so a typo ("taks") is an error and not a silent default.
func (s *Server) decodeStrict(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return wire.BadRequestf("malformed JSON body: %w", err)
	}
	if dec.More() {
		return wire.BadRequestf("malformed JSON body: more than one JSON value")
	}
	return nil
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	ev := s.k.History()
	if ev == nil {
		ev = []manager.Event{}
	}
	wire.WriteJSON(w, http.StatusOK, wire.HistoryResponse{Events: ev})
}

// handleEvents streams events as Server-Sent Events: "event: <kind>" and
// "data: <manager.Event JSON>". ?kinds=loaded,evicted filters. A comment
// line every 15 s keeps idle connections (and proxies) from timing out.
//
// Streams are bounded: past MaxEventStreams a new one gets 503; a write
// that the client does not take within EventWriteTimeout ends its stream
// (one log line), and so does the manager dropping a subscriber that
// fell behind (it closes the channel). Clients reconnect and reread the
// status.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		w.Header().Set("Retry-After", "5")
		wire.WriteError(w, http.StatusServiceUnavailable, wire.CodeTooManyStreams,
			fmt.Sprintf("too many event streams open (%d); close one or retry later", cap(s.streams)))
		s.log.Warn("event stream refused: at the cap", "remote", r.RemoteAddr, "cap", cap(s.streams))
		return
	}
	rc := http.NewResponseController(w)
	var kinds []manager.EventKind
	if q := r.URL.Query().Get("kinds"); q != "" {
		for k := range strings.SplitSeq(q, ",") {
			kinds = append(kinds, manager.EventKind(strings.TrimSpace(k)))
		}
	}
	ch, cancel := s.k.Subscribe(256)
	defer cancel()

	// send writes one message and flushes it within the write deadline;
	// false ends the stream.
	send := func(format string, a ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.opt.EventWriteTimeout))
		_, err := fmt.Fprintf(w, format, a...)
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			// A write that ran past its deadline is a slow client; any
			// other failure is one that left.
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.log.Warn("event stream dropped: the client does not keep up", "remote", r.RemoteAddr,
					"write_timeout", s.opt.EventWriteTimeout)
			} else {
				s.log.Debug("event stream ended", "remote", r.RemoteAddr, "err", err)
			}
			return false
		}
		return true
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Say hello at once so clients know the subscription is live.
	if !send(": vramkeeper events\n\n") {
		return
	}
	tick := time.NewTicker(sseKeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.stopping:
			return
		case <-tick.C:
			if !send(": keep-alive\n\n") {
				return
			}
		case e, ok := <-ch:
			if !ok {
				return // the manager dropped this subscriber, or stopped
			}
			if len(kinds) > 0 && !slices.Contains(kinds, e.Kind) {
				continue
			}
			b, err := json.Marshal(e)
			if err != nil {
				s.log.Error("event not encoded", "err", err)
				continue
			}
			if !send("event: %s\ndata: %s\n\n", e.Kind, b) {
				return
			}
		}
	}
}

func (s *Server) keeperFail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := wire.Classify(err)
	wire.LogFailure(s.log, r, status, err)
	wire.WriteError(w, status, code, err.Error())
}
