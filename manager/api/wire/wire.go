// Package wire is what the management API's server and its client share:
// the version they speak, the request and answer bodies, the error codes
// and how the manager's errors map to them, and the small HTTP helpers
// both sides of the server (management and proxy) use.
package wire

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// APIVersion is the management API's version. Clients send it in
// VersionHeader; an instance refuses (409, version_mismatch) a client that
// speaks another, so a CLI from another release never misreads the
// answers of a running instance.
const (
	APIVersion    = "1"
	VersionHeader = "VRAM-Keeper-API"
)

// DefaultAddr is where the desktop app and `vramkeeper serve` listen: one
// port above Ollama's.
const DefaultAddr = "127.0.0.1:11435"

// MaxBody bounds the management API's request bodies.
const MaxBody = 1 << 20

// ModelsResponse is GET /keeper/v1/models.
type ModelsResponse struct {
	Models []manager.ModelView `json:"models"`
}

// ModelActionRequest is the optional body of POST .../{action}: the reason
// the history records for a load ("loaded from the command line") and the
// context length to load at (0 or absent: the model's own; a model loaded
// at another is loaded again).
type ModelActionRequest struct {
	Reason        string `json:"reason,omitempty"`
	ContextLength int    `json:"context_length,omitempty"`
}

// UnloadResponse answers POST .../unload.
type UnloadResponse struct {
	Model    string `json:"model"`
	Unloaded bool   `json:"unloaded"`
}

// PinResponse answers POST .../pin and .../unpin.
type PinResponse struct {
	Model  string `json:"model"`
	Pinned bool   `json:"pinned"`
}

// YieldResponse answers POST /keeper/v1/yield: the models unloaded to give
// the GPU back. Until a restore, loads fail with code "yielded" (409).
type YieldResponse struct {
	Unloaded []string `json:"unloaded"`
}

// RestoreResponse answers POST /keeper/v1/restore: the models put back, at
// the context lengths they had.
type RestoreResponse struct {
	Restored []string `json:"restored"`
}

// BestRequest is POST /keeper/v1/best.
type BestRequest struct {
	Task string `json:"task"`
	Role string `json:"role,omitempty"`
}

// HistoryResponse is GET /keeper/v1/history.
type HistoryResponse struct {
	Events []manager.Event `json:"events"`
}

// PauseResponse answers POST /keeper/v1/pause and /resume.
type PauseResponse struct {
	Paused bool `json:"paused"`
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

// NonNil makes a list answer [] rather than null.
func NonNil(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may have left; nothing to do
}

// maxLogged bounds a text from a request in a log line.
const maxLogged = 1 << 10

// LogFailure logs a request that failed: the client's mistakes at info,
// ours and Ollama's as warnings, a client that left at debug.
func LogFailure(log *slog.Logger, r *http.Request, status int, err error) {
	if status == StatusClientGone {
		log.Debug("client left", "path", r.URL.Path, "err", err)
		return
	}
	lvl := slog.LevelInfo
	if status >= 500 {
		lvl = slog.LevelWarn
	}
	// The error may quote what the client sent (a made-up task or model
	// name of any length).
	log.Log(r.Context(), lvl, "request failed", "method", r.Method, "path", manager.Clip(r.URL.Path, maxLogged),
		"status", status, "err", manager.Clip(err.Error(), maxLogged))
}

// ParseSince reads the timeline's since parameter: "" (the zero time:
// everything), an RFC 3339 time, or a positive duration back from now
// ("90s", "15m").
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

// LoopbackHost reports whether a Host header names this machine's loopback.
func LoopbackHost(hostport string) bool {
	if hostport == "" {
		return true // HTTP/1.0 clients
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopback reports whether addr (host:port) listens on loopback only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false // ":11435" listens everywhere
	}
	return LoopbackHost(host)
}

// PullLine is one line of POST /keeper/v1/pull's answer, which streams
// newline-delimited JSON: the pull's progress as Ollama reports it, and,
// when it fails after the answer began, a last line with the error and
// its code (the answer's status is 200 by then).
type PullLine struct {
	serving.PullProgress
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}
