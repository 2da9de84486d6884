package api

import (
	"net/http"

	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// handleInstance says which instance this is and what it manages, so that
// a client configured for another Ollama or state folder, which reached
// this one on a shared listen address, does not take it for its own.
func (s *Server) handleInstance(w http.ResponseWriter, r *http.Request) {
	if s.opt.Instance == nil {
		wire.WriteError(w, http.StatusNotFound, wire.CodeNotFound, "this instance does not say what it manages")
		return
	}
	wire.WriteJSON(w, http.StatusOK, s.opt.Instance())
}
