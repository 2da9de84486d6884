package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// GET /keeper/v1/timeline[?since=T] answers the manager's poll samples and
// marks (timeline.Window) strictly after T: an RFC 3339 time, or a
// duration back from now ("15m"); without it, all it keeps (an hour). The
// window reads it every few seconds from the newest entry it has, for the
// History tab's chart; `vramkeeper history --plot` reads it all.

// TimelineKeeper is what the timeline endpoint needs of the Keeper. The
// server asks its Keeper for it, so an instance whose manager keeps no
// timeline answers 404 and the rest of the API works as before.
type TimelineKeeper interface {
	Timeline(since time.Time) timeline.Window
}

// ErrNoTimeline: the instance keeps no timeline (an older version).
var ErrNoTimeline = errors.New("the running instance keeps no timeline")

func (s *Server) handleTimeline(w http.ResponseWriter, r *http.Request) {
	tk, ok := s.k.(TimelineKeeper)
	if !ok {
		writeKeeperError(w, http.StatusNotFound, CodeNotFound, ErrNoTimeline.Error())
		return
	}
	since, err := ParseSince(r.URL.Query().Get("since"), time.Now())
	if err != nil {
		s.keeperFail(w, r, badRequest{err})
		return
	}
	writeJSON(w, http.StatusOK, tk.Timeline(since))
}

// ParseSince reads a since parameter: "" (the zero time: everything), an
// RFC 3339 time, or a positive duration back from now ("90s", "15m").
func ParseSince(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("since=%q: want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration back from now (15m)", v)
	}
	if d <= 0 {
		return time.Time{}, fmt.Errorf("since=%q: the duration back from now must be positive", v)
	}
	return now.Add(-d), nil
}

// Timeline reads the samples and marks after since (all of them for a zero
// since). The error wraps ErrNoTimeline when the instance keeps none.
func (c *Client) Timeline(ctx context.Context, since time.Time) (timeline.Window, error) {
	path := "timeline"
	if !since.IsZero() {
		path += "?since=" + url.QueryEscape(since.Format(time.RFC3339Nano))
	}
	var w timeline.Window
	err := c.do(ctx, http.MethodGet, path, nil, &w)
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		return w, fmt.Errorf("%w: %w", ErrNoTimeline, err)
	}
	return w, err
}

// Timeline reads the instance's timeline after since; the window's chart
// calls it from its own goroutine, so it is not cached like Snapshot.
func (r *Remote) Timeline(ctx context.Context, since time.Time) (timeline.Window, error) {
	return r.c.Timeline(ctx, since)
}
