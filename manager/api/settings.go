package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// The desktop window runs in a process of its own (so that the tray alone
// never starts a GL driver) and changes the running manager through these
// endpoints: pause/resume and the settings its Settings tab edits.

func (s *Server) handlePause(w http.ResponseWriter, r *http.Request) {
	if _, err := s.readBody(w, r); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	paused := strings.HasSuffix(r.URL.Path, "/pause")
	if err := s.k.SetPaused(r.Context(), paused); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, wire.PauseResponse{Paused: paused})
}

// handleSettings applies a manager.SettingsPatch: the fields it names
// change, the others stay, and the answer is the patch as applied. A field
// the manager does not know is an error, not a silent no-op.
func (s *Server) handleSettings(w http.ResponseWriter, r *http.Request) {
	var p manager.SettingsPatch
	if err := s.decodeStrict(w, r, &p); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	if err := p.Validate(); err != nil {
		s.keeperFail(w, r, wire.BadRequest{Err: err})
		return
	}
	if err := s.k.Apply(r.Context(), p); err != nil {
		s.keeperFail(w, r, settingsError(err))
		return
	}
	wire.WriteJSON(w, http.StatusOK, p)
}

// settingsError marks a settings change the manager refused as invalid as
// the client's mistake.
func settingsError(err error) error {
	if errors.Is(err, manager.ErrBadSettings) {
		return wire.BadRequest{Err: err}
	}
	return err
}

func (s *Server) handleStartOllama(w http.ResponseWriter, r *http.Request) {
	if _, err := s.readBody(w, r); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	if s.opt.StartOllama == nil {
		wire.WriteError(w, http.StatusNotFound, wire.CodeNotFound, "this instance does not start Ollama (only the desktop tray does)")
		return
	}
	res, err := s.opt.StartOllama(r.Context())
	if err != nil {
		// The server did not come up: say why (it exited, it is not
		// installed, it does not answer).
		wire.WriteError(w, http.StatusBadGateway, wire.CodeUnreachable, err.Error())
		return
	}
	wire.WriteJSON(w, http.StatusOK, res)
}

// handleOpenWindow asks the desktop tray to open its window: a second
// `vramkeeper` started on the same state folder does this instead of
// running a second manager.
func (s *Server) handleOpenWindow(w http.ResponseWriter, r *http.Request) {
	if _, err := s.readBody(w, r); err != nil {
		s.keeperFail(w, r, err)
		return
	}
	if s.opt.OpenWindow == nil {
		wire.WriteError(w, http.StatusNotFound, wire.CodeNotFound, "this instance has no window (it runs headless: vramkeeper serve)")
		return
	}
	if err := s.opt.OpenWindow(); err != nil {
		wire.WriteError(w, http.StatusInternalServerError, wire.CodeInternal, err.Error())
		return
	}
	wire.WriteJSON(w, http.StatusOK, map[string]bool{"opened": true})
}
