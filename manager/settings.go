package manager

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/prefetch"
	"github.com/vramkeeper/vramkeeper/manager/score"
)

// ContextAuto as a model's context length picks the largest power of two
// up to its trained length that fits the room when it is loaded.
const ContextAuto = config.ContextAuto

// NoModelLimit as MaxLoaded loads as many models as the budget holds.
const NoModelLimit = config.NoModelLimit

// MaxContext bounds every context length, as the config file does.
const MaxContext = config.MaxContext

// ErrBadSettings: Apply was given settings out of their range; nothing
// changed.
var ErrBadSettings = errors.New("invalid settings")

// Settings are what a user may change while the manager runs. They live in
// the owner goroutine only; everyone else reads them from
// Snapshot().Settings and changes them through Apply.
type Settings struct {
	// Budget is the bytes our models may use together, absolute or a
	// percentage of the card; zero means total − 1 GiB.
	Budget config.Size `json:"budget"`
	// MaxLoaded bounds how many models are loaded at once: default 2;
	// NoModelLimit leaves the budget as the only limit.
	MaxLoaded int      `json:"max_loaded"`
	NumCtx    int      `json:"context_length"` // default 4096 (Ollama's default on cards under 23 GiB)
	Pinned    []string `json:"pinned"`
	Policy    string   `json:"policy"` // evict.ByName; "" is the default (LRFU)
	// SafetyMargin is kept free on the card beyond the budget's own slack,
	// because the driver's free figure moves while a model loads.
	SafetyMargin uint64 `json:"safety_margin_bytes"` // default 256 MiB
	// BusyGrace bounds how long a model with requests in flight holds off
	// an eviction; 0 waits until the requests end.
	BusyGrace time.Duration `json:"busy_grace_ns"`
	// LoadTimeout is how long a load may take before it is given up; 0
	// lets it grow with the model's bytes (see loadDeadline).
	LoadTimeout time.Duration `json:"load_timeout_ns"`
	// Contexts are per-model context lengths by model name; ContextAuto
	// picks the largest that fits the room when the model is loaded.
	Contexts map[string]int `json:"contexts,omitempty"`
	// GPUOnly: a model that Ollama puts partly on the CPU is not kept; a
	// smaller context is tried, then (BestModelForTask) the next model.
	GPUOnly bool `json:"gpu_only"`
	// NoPrefetch turns off reading the predicted next models' files into
	// the page cache while the manager is idle (off for a remote Ollama).
	NoPrefetch bool `json:"no_prefetch"`
	// PrefetchMargin is the available memory prefetching leaves alone
	// (default 2 GiB).
	PrefetchMargin uint64 `json:"prefetch_margin_bytes"`
	// Tables are the task and role tables (score.Defaults() when nil); the
	// snapshot lists their names in Tasks and Roles.
	Tables score.Tables `json:"-"`
}

// withDefaults fills the zero values and checks the rest; the policy it
// names is returned resolved.
func (s Settings) withDefaults() (Settings, evict.Policy, error) {
	var errs []error
	if s.MaxLoaded < NoModelLimit {
		errs = append(errs, fmt.Errorf("max loaded: %d is negative", s.MaxLoaded))
	}
	if s.NumCtx < 0 || s.NumCtx > MaxContext {
		errs = append(errs, fmt.Errorf("context length: %d is not between 1 and %d tokens", s.NumCtx, MaxContext))
	}
	if s.BusyGrace < 0 {
		errs = append(errs, fmt.Errorf("busy grace: %s is negative", s.BusyGrace))
	}
	if s.LoadTimeout < 0 {
		errs = append(errs, fmt.Errorf("load timeout: %s is negative", s.LoadTimeout))
	}
	p, err := evict.ByName(s.Policy)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return s, nil, fmt.Errorf("%w: %w", ErrBadSettings, err)
	}
	if s.MaxLoaded == 0 {
		s.MaxLoaded = 2
	}
	if s.NumCtx == 0 {
		s.NumCtx = 4096
	}
	s.Policy = p.Name()
	if s.PrefetchMargin == 0 {
		s.PrefetchMargin = prefetch.DefaultMargin
	}
	if s.SafetyMargin == 0 {
		s.SafetyMargin = 256 * mib
	}
	if s.Tables.Tasks == nil {
		s.Tables = score.Defaults()
	}
	for name, n := range s.Contexts {
		if (n < 1 || n > MaxContext) && n != ContextAuto {
			return s, nil, fmt.Errorf("%w: context length of %s: %d is not a number of tokens from 1 to %d, or auto", ErrBadSettings, name, n, MaxContext)
		}
	}
	s.Pinned = slices.Clone(s.Pinned)
	s.Contexts = maps.Clone(s.Contexts)
	return s, p, nil
}

// SettingsPatch changes the settings it names and leaves the others as
// they are: Apply takes it, and it crosses the API whole (POST
// /keeper/v1/settings), so a change reaches a running instance exactly as
// it reaches the manager in this process. Values mean what they mean in
// Settings (MaxLoaded 0: the default; NoModelLimit: no count limit; a
// zero Budget: card - 1 GiB).
type SettingsPatch struct {
	Budget         *config.Size     `json:"budget,omitempty"`
	MaxLoaded      *int             `json:"max_loaded,omitempty"`
	NumCtx         *int             `json:"context_length,omitempty"`
	Policy         *string          `json:"policy,omitempty"`
	SafetyMargin   *uint64          `json:"safety_margin_bytes,omitempty"`
	BusyGrace      *config.Duration `json:"busy_grace,omitempty"`
	LoadTimeout    *config.Duration `json:"load_timeout,omitempty"`
	GPUOnly        *bool            `json:"gpu_only,omitempty"`
	NoPrefetch     *bool            `json:"no_prefetch,omitempty"`
	PrefetchMargin *uint64          `json:"prefetch_margin_bytes,omitempty"`
	// Contexts sets the context length of each model it names; a null
	// removes the model's own, so that it follows NumCtx again.
	Contexts map[string]*ContextLength `json:"contexts,omitempty"`
}

// UnmarshalJSON reads a patch strictly, each error naming its field: an
// unknown field is an error (a typo must not be a silent no-op), and so is
// a malformed value.
func (p *SettingsPatch) UnmarshalJSON(b []byte) error {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return err
	}
	var out SettingsPatch
	v := reflect.ValueOf(&out).Elem()
	fields := map[string]reflect.Value{}
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		fields[name] = v.Field(i)
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(members)) {
		f, ok := fields[name]
		if !ok {
			errs = append(errs, fmt.Errorf("unknown setting %q (known: %s)", name, strings.Join(slices.Sorted(maps.Keys(fields)), ", ")))
			continue
		}
		if err := json.Unmarshal(members[name], f.Addr().Interface()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	*p = out
	return nil
}

// ApplyTo makes the patch's changes to s (the manager checks them after).
func (p SettingsPatch) ApplyTo(s *Settings) {
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	if p.Budget != nil {
		s.Budget = *p.Budget
	}
	set(&s.MaxLoaded, p.MaxLoaded)
	set(&s.NumCtx, p.NumCtx)
	if p.Policy != nil {
		s.Policy = *p.Policy
	}
	if p.SafetyMargin != nil {
		s.SafetyMargin = *p.SafetyMargin
	}
	if p.BusyGrace != nil {
		s.BusyGrace = time.Duration(*p.BusyGrace)
	}
	if p.LoadTimeout != nil {
		s.LoadTimeout = time.Duration(*p.LoadTimeout)
	}
	if p.GPUOnly != nil {
		s.GPUOnly = *p.GPUOnly
	}
	if p.NoPrefetch != nil {
		s.NoPrefetch = *p.NoPrefetch
	}
	if p.PrefetchMargin != nil {
		s.PrefetchMargin = *p.PrefetchMargin
	}
	if len(p.Contexts) > 0 {
		s.Contexts = maps.Clone(s.Contexts)
		if s.Contexts == nil {
			s.Contexts = map[string]int{}
		}
		for name, n := range p.Contexts {
			if n == nil {
				delete(s.Contexts, name)
			} else {
				s.Contexts[name] = int(*n)
			}
		}
	}
}

// Validate checks the values the patch names, each error naming its
// field as the API spells it; Apply calls it, and the API answers 400 with
// its message.
func (p SettingsPatch) Validate() error {
	var errs []error
	bad := func(field string, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}
	if p.MaxLoaded != nil && *p.MaxLoaded < NoModelLimit {
		bad("max_loaded", "%d: want a count, 0 for the default or %d for no limit", *p.MaxLoaded, NoModelLimit)
	}
	if p.NumCtx != nil && (*p.NumCtx < 0 || *p.NumCtx > MaxContext) {
		bad("context_length", "%d: want 1 to %d tokens, or 0 for the default", *p.NumCtx, MaxContext)
	}
	if p.Policy != nil {
		if _, err := evict.ByName(*p.Policy); err != nil {
			bad("policy", "%v", err)
		}
	}
	if p.BusyGrace != nil && *p.BusyGrace < 0 {
		bad("busy_grace", "%s is negative", time.Duration(*p.BusyGrace))
	}
	if p.LoadTimeout != nil && *p.LoadTimeout < 0 {
		bad("load_timeout", "%s is negative", time.Duration(*p.LoadTimeout))
	}
	for _, name := range slices.Sorted(maps.Keys(p.Contexts)) {
		n := p.Contexts[name]
		switch {
		case strings.TrimSpace(name) == "":
			bad("contexts", "a model name is empty")
		case n != nil && *n != ContextAuto && (*n < 1 || *n > MaxContext):
			bad("contexts."+name, "%d: want 1 to %d tokens, or \"auto\"", int(*n), MaxContext)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSettings, err)
	}
	return nil
}

// IsZero reports whether the patch changes nothing.
func (p SettingsPatch) IsZero() bool {
	return p.Budget == nil && p.MaxLoaded == nil && p.NumCtx == nil && p.Policy == nil && p.SafetyMargin == nil &&
		p.BusyGrace == nil && p.LoadTimeout == nil && p.GPUOnly == nil && p.NoPrefetch == nil &&
		p.PrefetchMargin == nil && len(p.Contexts) == 0
}

// ContextsPatch is the Contexts of a patch that turns the per-model
// context lengths from into to: the changed ones set, the ones gone
// removed.
func ContextsPatch(from, to map[string]int) map[string]*ContextLength {
	var out map[string]*ContextLength
	put := func(name string, v *ContextLength) {
		if out == nil {
			out = map[string]*ContextLength{}
		}
		out[name] = v
	}
	for name, n := range to {
		if old, ok := from[name]; !ok || old != n {
			c := ContextLength(n)
			put(name, &c)
		}
	}
	for name := range from {
		if _, ok := to[name]; !ok {
			put(name, nil)
		}
	}
	return out
}

// ContextLength is a model's context length as a patch carries it: a
// number of tokens, or "auto" (ContextAuto).
type ContextLength int

// MarshalJSON writes "auto" or the number.
func (c ContextLength) MarshalJSON() ([]byte, error) {
	if c == ContextAuto {
		return []byte(`"auto"`), nil
	}
	return json.Marshal(int(c))
}

// UnmarshalJSON reads a number of tokens or "auto" (any case); Apply
// checks the range.
func (c *ContextLength) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if !strings.EqualFold(s, "auto") {
			return fmt.Errorf(`context length %q: want a number of tokens or "auto"`, s)
		}
		*c = ContextAuto
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf(`context length %s: want a number of tokens or "auto"`, b)
	}
	*c = ContextLength(n)
	return nil
}
