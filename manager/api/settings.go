package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
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
// or ContextLength means the manager's default. The newer settings are
// optional and absent ones stay as they are: GPUOnly, LoadTimeout ("90s";
// "" lets it grow with the model's size) and Contexts, which replaces the
// per-model context lengths whole ({} clears them). Saving them to the
// config file is the caller's business; this only changes the running
// manager.
type SettingsRequest struct {
	Budget        string                   `json:"budget"`
	MaxLoaded     int                      `json:"max_loaded"`
	ContextLength int                      `json:"context_length"`
	GPUOnly       *bool                    `json:"gpu_only,omitempty"`
	LoadTimeout   *string                  `json:"load_timeout,omitempty"`
	Contexts      map[string]ContextLength `json:"contexts"`
}

// ContextLength is a model's context length on the wire: a number of
// tokens, or "auto" (manager.ContextAuto): the largest that fits the room
// when the model is loaded.
type ContextLength int

// MarshalJSON writes "auto" or the number.
func (c ContextLength) MarshalJSON() ([]byte, error) {
	if c == manager.ContextAuto {
		return []byte(`"auto"`), nil
	}
	return json.Marshal(int(c))
}

// UnmarshalJSON reads a number of tokens or "auto" (any case). The range is
// Validate's to check.
func (c *ContextLength) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if !strings.EqualFold(s, "auto") {
			return fmt.Errorf(`context length %q: want a number of tokens or "auto"`, s)
		}
		*c = manager.ContextAuto
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf(`context length %s: want a number of tokens or "auto"`, b)
	}
	*c = ContextLength(n)
	return nil
}

// Validate parses the budget and checks the rest, by the config file's
// rules.
func (q SettingsRequest) Validate() (config.Size, error) {
	var size config.Size
	var errs []error
	if q.Budget != "" {
		var err error
		if size, err = config.ParseSize(q.Budget); err != nil {
			errs = append(errs, fmt.Errorf("budget: %w", err))
		}
	}
	if q.MaxLoaded < manager.NoModelLimit {
		errs = append(errs, fmt.Errorf("max_loaded: %d: want a count, 0 for the default or -1 for no limit", q.MaxLoaded))
	}
	if q.ContextLength < 0 {
		errs = append(errs, fmt.Errorf("context_length: %d is negative", q.ContextLength))
	}
	if q.LoadTimeout != nil {
		if _, err := (config.Config{LoadTimeout: *q.LoadTimeout}).LoadTimeoutDuration(); err != nil {
			errs = append(errs, fmt.Errorf("load_timeout: %w", err))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(q.Contexts)) {
		if strings.TrimSpace(name) == "" {
			errs = append(errs, errors.New("contexts: a model name is empty"))
			continue
		}
		if _, err := contextConfig(q.Contexts[name]).Context(); err != nil {
			errs = append(errs, fmt.Errorf("contexts.%s: %w", name, err))
		}
	}
	return size, errors.Join(errs...)
}

// contextConfig is a context length as the config file holds it, so the
// API and the file accept the same values.
func contextConfig(c ContextLength) config.ModelConfig {
	if c == manager.ContextAuto {
		return config.ModelConfig{ContextLength: "auto"}
	}
	return config.ModelConfig{ContextLength: int64(c)}
}

// ConfigContexts are the per-model context lengths of a config file
// ([models."NAME"] context_length) as the manager's Settings.Contexts
// holds them (manager.ContextAuto for "auto"); nil when none is set. The
// command line starts the manager with them and the window applies them.
func ConfigContexts(cfg config.Config) (map[string]int, error) {
	var out map[string]int
	for name, mc := range cfg.Models {
		n, err := mc.Context()
		if err != nil {
			return nil, fmt.Errorf("models.%q.context_length: %w", name, err)
		}
		if n == 0 {
			continue
		}
		if out == nil {
			out = map[string]int{}
		}
		out[name] = n
	}
	return out, nil
}

// edit is the change a valid request makes to the running settings.
func (q SettingsRequest) edit(budget config.Size) func(*manager.Settings) {
	return func(set *manager.Settings) {
		set.Budget, set.MaxLoaded, set.NumCtx = budget, q.MaxLoaded, q.ContextLength
		if q.GPUOnly != nil {
			set.GPUOnly = *q.GPUOnly
		}
		if q.LoadTimeout != nil {
			set.LoadTimeout, _ = (config.Config{LoadTimeout: *q.LoadTimeout}).LoadTimeoutDuration() // validated
		}
		if q.Contexts != nil {
			set.Contexts = make(map[string]int, len(q.Contexts))
			for name, n := range q.Contexts {
				set.Contexts[name] = int(n)
			}
		}
	}
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
	if err := s.k.Apply(r.Context(), req.edit(size)); err != nil {
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
