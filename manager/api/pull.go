package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/api/wire"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// handlePull downloads a model through the manager (POST
// /keeper/v1/pull {"model", "insecure"}), streaming its progress as
// newline-delimited wire.PullLine. Like Ollama's own /api/pull through the
// proxy, it changes what is installed: with a token it needs allow_admin.
// A client that leaves, or stops reading, cancels the pull.
func (s *Server) handlePull(w http.ResponseWriter, r *http.Request) {
	if s.opt.Token != "" && !s.opt.AllowAdmin {
		s.deny(w, r, http.StatusForbidden, wire.CodeForbidden,
			"pulling a model changes what is installed: set allow_admin = true in this instance's config to allow it with a token")
		return
	}
	var req serving.PullRequest
	if err := s.decodeStrict(w, r, &req); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	if strings.TrimSpace(req.Name) == "" {
		s.keeperFail(w, r, wire.BadRequestf(`"model" is required: the name of the model to download, e.g. "llama3.2:3b"`))
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	write := func(l wire.PullLine) {
		if ctx.Err() != nil {
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(s.opt.EventWriteTimeout))
		err := enc.Encode(l)
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			s.log.Info("pull: the client stopped reading; cancelling", "model", req.Name, "err", err)
			cancel()
		}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	err := s.k.Pull(ctx, req, func(p serving.PullProgress) { write(wire.PullLine{PullProgress: p}) })
	if err != nil {
		status, code := wire.Classify(err)
		wire.LogFailure(s.log, r, status, err)
		write(wire.PullLine{Error: err.Error(), Code: code})
	}
}
