package api

import (
	"net/http"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// GET /keeper/v1/timeline[?since=T] answers the manager's poll samples and
// marks (timeline.Window) strictly after T: an RFC 3339 time, or a
// duration back from now ("15m"); without it, all it keeps (an hour). The
// window reads it every few seconds from the newest entry it has, for the
// History tab's chart; `vramkeeper history --plot` reads it all.

func (s *Server) handleTimeline(w http.ResponseWriter, r *http.Request) {
	since, err := wire.ParseSince(r.URL.Query().Get("since"), time.Now())
	if err != nil {
		s.keeperFail(w, r, wire.BadRequest{Err: err})
		return
	}
	tl, err := s.k.Timeline(r.Context(), since)
	if err != nil {
		s.keeperFail(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, tl)
}
