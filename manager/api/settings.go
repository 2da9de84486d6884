package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// The desktop window runs in a process of its own (so that the tray alone
// never starts a GL driver) and changes the running manager through these
// endpoints: pause/resume and the settings its Settings tab edits.

// PauseResponse answers POST /keeper/v1/pause and /resume.
type PauseResponse struct {
	Paused bool `json:"paused"`
}

func (s *Server) handlePause(w http.ResponseWriter, r *http.Request) {
	if _, err := readBody(w, r, maxKeeperBody); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	paused := strings.HasSuffix(r.URL.Path, "/pause")
	if err := s.k.SetPaused(r.Context(), paused); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, PauseResponse{Paused: paused})
}

// SettingsRequest is POST /keeper/v1/settings: the running settings the
// desktop's Settings tab changes. The budget is a size ("7GiB") or a share
// of the card ("80%"); "" means the default (card − 1 GiB). Zero MaxLoaded
// or ContextLength means the manager's default. Saving them to the config
// file is the caller's business; this only changes the running manager.
type SettingsRequest struct {
	Budget        string `json:"budget"`
	MaxLoaded     int    `json:"max_loaded"`
	ContextLength int    `json:"context_length"`
}

// Validate parses the budget and checks the numbers.
func (q SettingsRequest) Validate() (config.Size, error) {
	var size config.Size
	var errs []error
	if q.Budget != "" {
		var err error
		if size, err = config.ParseSize(q.Budget); err != nil {
			errs = append(errs, fmt.Errorf("budget: %w", err))
		}
	}
	if q.MaxLoaded < 0 {
		errs = append(errs, fmt.Errorf("max_loaded: %d is negative", q.MaxLoaded))
	}
	if q.ContextLength < 0 {
		errs = append(errs, fmt.Errorf("context_length: %d is negative", q.ContextLength))
	}
	return size, errors.Join(errs...)
}

func (s *Server) handleSettings(w http.ResponseWriter, r *http.Request) {
	var req SettingsRequest
	if err := decodeStrict(w, r, &req); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	size, err := req.Validate()
	if err != nil {
		s.keeperFail(w, r, badRequestf("settings: %w", err))
		return
	}
	err = s.k.Apply(r.Context(), func(set *manager.Settings) {
		set.Budget, set.MaxLoaded, set.NumCtx = size, req.MaxLoaded, req.ContextLength
	})
	if err != nil {
		s.keeperFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

// StartOllamaResponse answers POST /keeper/v1/ollama/start with the real
// state of the server: Started is true only once an Ollama answers.
type StartOllamaResponse struct {
	// Started: an Ollama answers at the manager's URL now.
	Started bool `json:"started"`
	// Ours: the tray started it and restarts it when it exits; false for
	// a server the user started, which the tray never touches.
	Ours     bool   `json:"ours"`
	PID      int    `json:"pid,omitempty"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"last_exit,omitempty"`
}

func (s *Server) handleStartOllama(w http.ResponseWriter, r *http.Request) {
	if _, err := readBody(w, r, maxKeeperBody); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	if s.opt.StartOllama == nil {
		writeKeeperError(w, http.StatusNotFound, CodeNotFound, "this instance does not start Ollama (only the desktop tray does)")
		return
	}
	res, err := s.opt.StartOllama(r.Context())
	if err != nil {
		// The server did not come up: say why (it exited, it is not
		// installed, it does not answer).
		writeKeeperError(w, http.StatusBadGateway, CodeUnreachable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// handleOpenWindow asks the desktop tray to open its window: a second
// `vramkeeper` started on the same state folder does this instead of
// running a second manager.
func (s *Server) handleOpenWindow(w http.ResponseWriter, r *http.Request) {
	if _, err := readBody(w, r, maxKeeperBody); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	if s.opt.OpenWindow == nil {
		writeKeeperError(w, http.StatusNotFound, CodeNotFound, "this instance has no window (it runs headless: vramkeeper serve)")
		return
	}
	if err := s.opt.OpenWindow(); err != nil {
		writeKeeperError(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"opened": true})
}
