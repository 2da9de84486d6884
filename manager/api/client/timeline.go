package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// Timeline reads the samples and marks after since (all of them for a zero
// since).
func (c *Client) Timeline(ctx context.Context, since time.Time) (timeline.Window, error) {
	path := "timeline"
	if !since.IsZero() {
		path += "?since=" + url.QueryEscape(since.Format(time.RFC3339Nano))
	}
	var w timeline.Window
	err := c.do(ctx, http.MethodGet, path, nil, &w)
	return w, err
}
