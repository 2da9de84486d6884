// Package config reads and writes VRAM Keeper's TOML settings file.
//
// Load is forgiving in what it returns and strict in what it reports: the
// app must start with usable settings even when the file is broken, and the
// user must learn exactly which line to fix.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/vramkeeper/vramkeeper/manager/score"
	"github.com/vramkeeper/vramkeeper/manager/statefile"
)

// Config is the settings file. Zero values of strings mean "use the
// default" only where the comment says so; Load fills defaults first.
type Config struct {
	OllamaURL      string   `toml:"ollama_url"`      // "" = OLLAMA_HOST as the official client reads it
	Budget         string   `toml:"budget"`          // "" = total − 1 GiB; "7GiB", "7000MB", "80%"
	VRAM           string   `toml:"vram"`            // card size to assume when NVML is missing, default "8GiB"
	MaxLoaded      int      `toml:"max_loaded"`      // default 2; 0: as many as the budget holds
	ContextLength  int      `toml:"context_length"`  // default 4096
	Pinned         []string `toml:"pinned"`          // models never evicted
	Policy         string   `toml:"policy"`          // eviction policy: "lrfu" (default), "gdsf" or "lru"
	Notifications  bool     `toml:"notifications"`   // default true
	Listen         string   `toml:"listen"`          // local API address, default "127.0.0.1:11435"
	Token          string   `toml:"token"`           // API bearer token; required off loopback
	RefreshSeconds int      `toml:"refresh_seconds"` // discovery timer, default 30
	// BusyGraceSeconds bounds how long requests in flight on a model hold
	// off its eviction or unload; 0 waits until they finish.
	BusyGraceSeconds int `toml:"busy_grace_seconds"`
	// LoadTimeout is how long a load may take before it is given up
	// ("90s", "5m"); "" lets it grow with the model's size.
	LoadTimeout string `toml:"load_timeout"`
	// GPUOnly: a model Ollama would put partly on the CPU is not kept; a
	// smaller context is tried, then the next model.
	GPUOnly bool `toml:"gpu_only"`
	// WarmStart names the task whose best model is loaded at start when
	// none of ours is loaded; "" turns it off. Default "chat".
	WarmStart string                 `toml:"warm_start"`
	Models    map[string]ModelConfig `toml:"models"` // per-model settings, by name
	Tasks     map[string]score.Task  `toml:"tasks"`  // overrides/additions to score.Defaults()
	Roles     map[string]score.Role  `toml:"roles"`
	// Prefetch reads the model expected next into the page cache while the
	// manager is idle (default true; off by itself for a remote Ollama),
	// leaving PrefetchMargin of available memory alone (default "2GiB").
	Prefetch       bool   `toml:"prefetch"`
	PrefetchMargin string `toml:"prefetch_margin"`
	// AllowAdmin lets Ollama's delete, pull, push, create and copy
	// through the proxy when a token is set; without a token the API is
	// loopback only and they always pass.
	AllowAdmin bool `toml:"allow_admin"`
}

// ModelConfig is one model's own settings.
type ModelConfig struct {
	// ContextLength is a number of tokens, or "auto": the largest power of
	// two up to the model's trained length that fits the room left.
	ContextLength any `toml:"context_length"`
}

// ContextAuto is the context length that means "auto".
const ContextAuto = -1

// MaxContext bounds every context length: 16M tokens, past every model's
// trained length, and far from the overflow of a size computed from it.
const MaxContext = 1 << 24

// NoModelLimit is the running max loaded that means "as many as the
// budget holds" (max_loaded = 0 in the file).
const NoModelLimit = -1

// ModelLimit is max_loaded as the manager takes it: 0 in the file (no
// count limit) becomes NoModelLimit.
func (c Config) ModelLimit() int {
	if c.MaxLoaded == 0 {
		return NoModelLimit
	}
	return c.MaxLoaded
}

// Context returns the configured context length: 0 when none is set,
// ContextAuto for "auto".
func (m ModelConfig) Context() (int, error) {
	switch v := m.ContextLength.(type) {
	case nil:
		return 0, nil
	case int64:
		if v < 1 || v > MaxContext {
			return 0, fmt.Errorf("context_length must be between 1 and %d tokens, got %d", MaxContext, v)
		}
		return int(v), nil
	case string:
		if strings.EqualFold(v, "auto") {
			return ContextAuto, nil
		}
	}
	return 0, fmt.Errorf(`context_length must be a number of tokens or "auto", got %v`, m.ContextLength)
}

// Contexts are the per-model context lengths ([models."NAME"]
// context_length) by name, ContextAuto for "auto"; nil when none is set.
// The command line starts the manager with them and the window applies
// them.
func (c Config) Contexts() (map[string]int, error) {
	var out map[string]int
	for name, mc := range c.Models {
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

// LoadTimeoutDuration parses load_timeout (0 when unset).
func (c Config) LoadTimeoutDuration() (time.Duration, error) {
	if c.LoadTimeout == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(c.LoadTimeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a duration such as 90s or 5m", c.LoadTimeout)
	}
	return d, nil
}

// Policy names.
const (
	PolicyLRFU = "lrfu"
	PolicyGDSF = "gdsf"
	PolicyLRU  = "lru"
)

// Policies returns the eviction policy names Validate accepts.
func Policies() []string { return []string{PolicyLRFU, PolicyGDSF, PolicyLRU} }

// defaultReserve is what the default budget leaves free on the card for the
// desktop, the compositor and other programs.
const defaultReserve = 1 << 30

// Default returns the built-in settings.
func Default() Config {
	return Config{
		VRAM:           "8GiB",
		MaxLoaded:      2,
		ContextLength:  4096,
		Policy:         PolicyLRFU,
		Notifications:  true,
		Listen:         "127.0.0.1:11435",
		RefreshSeconds: 30,
		WarmStart:      "chat",
		Prefetch:       true,
	}
}

// DefaultPath is where the config file lives unless a flag says otherwise:
// os.UserConfigDir()/vramkeeper/config.toml ($XDG_CONFIG_HOME or ~/.config
// on Linux, %APPDATA% on Windows: settings roam with the user's profile).
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config directory: %w", err)
	}
	return filepath.Join(dir, "vramkeeper", "config.toml"), nil
}

// BudgetBytes resolves the budget for a card of total bytes (Size.Budget);
// an invalid budget counts as unset, and Load and Validate report it.
func (c Config) BudgetBytes(total uint64) uint64 {
	b, _ := ParseSize(c.Budget)
	return b.Budget(total)
}

// VRAMBytes is the card size to assume when the driver cannot be asked.
// An invalid value counts as the default 8 GiB; Load and Validate report it.
func (c Config) VRAMBytes() uint64 {
	if s, err := ParseSize(c.VRAM); err == nil && s.Percent == 0 {
		return s.Bytes
	}
	s, _ := ParseSize(Default().VRAM)
	return s.Bytes
}

// Error is one problem in a config file, located where possible. Load
// returns these joined with errors.Join; use errors.As to get at them.
type Error struct {
	Path   string
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Key    string // dotted key ("max_loaded", "tasks.chat.prefer"); "" when unknown
	Err    error
}

// Error renders "path:line:col: key: reason", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrUnknownKey is wrapped by the Error for a key Config does not have.
var ErrUnknownKey = errors.New("unknown key")

// Load reads the config file at path.
//
//   - A missing file gives Default() and no error: first run.
//   - A file that is not valid TOML, or has a value of the wrong type, gives
//     Default() and an *Error located at line:col.
//   - Unknown keys (typos) are errors too, one *Error each, but the keys
//     that were understood are kept: a misspelt key should not throw away
//     the rest of the user's settings.
//   - A field with an invalid value (negative max_loaded, bad size, unknown
//     policy) keeps its default; the error names the key and its line.
//
// All errors come joined (errors.Join); the Config is always usable.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), nil
	}
	if err != nil {
		return Default(), fmt.Errorf("read config: %w", err)
	}
	keys := keyPositions(data)

	c := Default()
	var errs []error
	err = toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(&c)
	var strict *toml.StrictMissingError
	var decode *toml.DecodeError
	switch {
	case err == nil:
	case errors.As(err, &strict):
		for i := range strict.Errors {
			e := &strict.Errors[i]
			line, col := e.Position()
			errs = append(errs, &Error{Path: path, Line: line, Column: col, Key: strings.Join(e.Key(), "."), Err: ErrUnknownKey})
		}
	case errors.As(err, &decode):
		line, col := decode.Position()
		return Default(), &Error{Path: path, Line: line, Column: col, Key: keys.keyAtLine(line), Err: errors.New(strings.TrimPrefix(decode.Error(), "toml: "))}
	default:
		return Default(), &Error{Path: path, Err: err}
	}

	def := Default()
	for _, p := range c.problems() {
		p.reset(&c, def)
		e := &Error{Path: path, Key: p.key, Err: p.err}
		if pos, ok := keys.find(p.key); ok {
			e.Line, e.Column = pos.Line, pos.Column
		}
		errs = append(errs, e)
	}
	// Report in file order, as a compiler would.
	slices.SortStableFunc(errs, func(a, b error) int {
		ea, eb := a.(*Error), b.(*Error)
		if ea.Line != eb.Line {
			return ea.Line - eb.Line
		}
		return ea.Column - eb.Column
	})
	return c, errors.Join(errs...)
}

// Validate reports every invalid value, each error naming its key, joined
// with errors.Join; nil when all is well.
func (c Config) Validate() error {
	var errs []error
	for _, p := range c.problems() {
		errs = append(errs, fmt.Errorf("%s: %w", p.key, p.err))
	}
	return errors.Join(errs...)
}

// Save writes c to path atomically: a temporary file in the same directory,
// synced, then renamed over the old one, so a crash never leaves half a
// file. The file is 0600 and its directory 0700, since it may hold the API
// token. Comments in an existing file are not kept.
func Save(path string, c Config) error {
	data, err := toml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	data = append([]byte("# VRAM Keeper settings. Written by the app: comments here are not kept.\n\n"), data...)

	if err := statefile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// problem is one invalid field: its key, what is wrong, and how to put the
// default back.
type problem struct {
	key   string
	err   error
	reset func(c *Config, def Config)
}

func (c Config) problems() []problem {
	var ps []problem
	add := func(key string, err error, reset func(c *Config, def Config)) {
		if err == nil {
			return
		}
		// The key is printed once, in front; do not repeat a field name
		// the error carries itself.
		var fe *score.FieldError
		if errors.As(err, &fe) {
			err = fe.Err
		}
		ps = append(ps, problem{key: key, err: err, reset: reset})
	}
	add("ollama_url", checkURL(c.OllamaURL), func(c *Config, d Config) { c.OllamaURL = d.OllamaURL })
	if c.Budget != "" {
		_, err := ParseSize(c.Budget)
		add("budget", err, func(c *Config, d Config) { c.Budget = d.Budget })
	}
	if s, err := ParseSize(c.VRAM); err != nil {
		add("vram", err, func(c *Config, d Config) { c.VRAM = d.VRAM })
	} else if s.Percent > 0 {
		add("vram", fmt.Errorf("%q: the card size cannot be a percentage", c.VRAM), func(c *Config, d Config) { c.VRAM = d.VRAM })
	}
	if c.MaxLoaded < 0 {
		add("max_loaded", fmt.Errorf("must be 0 (as many as the budget holds) or more, got %d", c.MaxLoaded), func(c *Config, d Config) { c.MaxLoaded = d.MaxLoaded })
	}
	if c.ContextLength < 1 || c.ContextLength > MaxContext {
		add("context_length", fmt.Errorf("must be between 1 and %d tokens, got %d", MaxContext, c.ContextLength), func(c *Config, d Config) { c.ContextLength = d.ContextLength })
	}
	if !slices.Contains(Policies(), c.Policy) {
		add("policy", fmt.Errorf("unknown policy %q (known: %s)", c.Policy, strings.Join(Policies(), ", ")), func(c *Config, d Config) { c.Policy = d.Policy })
	}
	add("listen", checkListen(c.Listen, c.Token), func(c *Config, d Config) { c.Listen = d.Listen })
	if c.BusyGraceSeconds < 0 {
		add("busy_grace_seconds", fmt.Errorf("must be 0 (wait for requests) or more, got %d", c.BusyGraceSeconds), func(c *Config, d Config) { c.BusyGraceSeconds = d.BusyGraceSeconds })
	}
	if c.PrefetchMargin != "" {
		if s, err := ParseSize(c.PrefetchMargin); err != nil || s.Percent > 0 {
			if err == nil {
				err = fmt.Errorf("%q: want a size such as 2GiB", c.PrefetchMargin)
			}
			add("prefetch_margin", err, func(c *Config, d Config) { c.PrefetchMargin = d.PrefetchMargin })
		}
	}
	if _, err := c.LoadTimeoutDuration(); err != nil {
		add("load_timeout", err, func(c *Config, d Config) { c.LoadTimeout = d.LoadTimeout })
	}
	for _, name := range sortedKeys(c.Models) {
		if _, err := c.Models[name].Context(); err != nil {
			add("models."+name+".context_length", err, func(c *Config, _ Config) { c.Models = without(c.Models, name) })
		}
	}
	if c.RefreshSeconds < 1 {
		add("refresh_seconds", fmt.Errorf("must be at least 1, got %d", c.RefreshSeconds), func(c *Config, d Config) { c.RefreshSeconds = d.RefreshSeconds })
	}
	for i, name := range c.Pinned {
		if strings.TrimSpace(name) == "" {
			add("pinned", fmt.Errorf("entry %d is empty", i), func(c *Config, d Config) {
				c.Pinned = slices.DeleteFunc(slices.Clone(c.Pinned), func(s string) bool { return strings.TrimSpace(s) == "" })
			})
			break
		}
	}
	// A bad task or role override is dropped whole (the built-in entry, if
	// any, stays): half an override could mean something the user did not
	// write.
	for _, name := range sortedKeys(c.Tasks) {
		for _, err := range splitFields(c.Tasks[name].Validate()) {
			add(fieldKey("tasks."+name, err), err, func(c *Config, _ Config) { c.Tasks = without(c.Tasks, name) })
		}
	}
	for _, name := range sortedKeys(c.Roles) {
		for _, err := range splitFields(c.Roles[name].Validate()) {
			add(fieldKey("roles."+name, err), err, func(c *Config, _ Config) { c.Roles = without(c.Roles, name) })
		}
	}
	return ps
}

// splitFields undoes (nested) errors.Join so each problem gets its own
// line.
func splitFields(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, splitFields(e)...)
	}
	return out
}

// fieldKey turns a score.FieldError into its full dotted key
// ("tasks.chat.prefer[1]"), so the message and the line lookup name it.
func fieldKey(table string, err error) string {
	var fe *score.FieldError
	if errors.As(err, &fe) {
		return table + "." + fe.Field
	}
	return table
}

// checkURL accepts what OLLAMA_HOST accepts: empty, "host:port", or an
// http(s) URL.
func checkURL(s string) error {
	if s == "" {
		return nil
	}
	raw := s
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	return nil
}

// checkListen wants host:port, and a token whenever the API would be
// reachable from other machines: it can load and unload models.
func checkListen(addr, token string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be 1–65535", addr)
	}
	if token == "" && !isLoopback(host) {
		return fmt.Errorf("%q: listening beyond localhost needs a token", addr)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// without returns a copy of m lacking key, so a reset never mutates a map
// the caller may share; nil when nothing is left, as if the file had no
// such table.
func without[V any](m map[string]V, key string) map[string]V {
	if len(m) == 0 || (len(m) == 1 && hasKey(m, key)) {
		return nil
	}
	out := make(map[string]V, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func hasKey[V any](m map[string]V, key string) bool {
	_, ok := m[key]
	return ok
}

// position is where a key starts in the file.
type position struct{ Line, Column int }

// positions maps dotted keys (and table headers) to where they are written.
type positions map[string]position

// keyPositions indexes every key of a TOML document by its dotted name, so
// validation errors, which are found after decoding, can still say which
// line to fix. A document that does not parse yields what was read before
// the error; the decoder reports the syntax error itself.
func keyPositions(data []byte) positions {
	out := positions{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = table[:0]
			it := n.Key()
			var first *unstable.Node
			for it.Next() {
				if first == nil {
					first = it.Node()
				}
				table = append(table, string(it.Node().Data))
			}
			if first != nil {
				out.add(&p, strings.Join(table, "."), first)
			}
		case unstable.KeyValue:
			key := slices.Clone(table)
			it := n.Key()
			var first *unstable.Node
			for it.Next() {
				if first == nil {
					first = it.Node()
				}
				key = append(key, string(it.Node().Data))
			}
			if first != nil {
				out.add(&p, strings.Join(key, "."), first)
			}
		}
	}
	return out
}

func (ps positions) add(p *unstable.Parser, key string, n *unstable.Node) {
	if _, seen := ps[key]; seen {
		return
	}
	start := p.Shape(n.Raw).Start
	ps[key] = position{Line: start.Line, Column: start.Column}
}

// find returns the position of key or, failing that, of the nearest
// enclosing key written in the file: "tasks.chat.prefer[1]" is found at
// "tasks.chat.prefer", a key set through defaults only at nothing.
func (ps positions) find(key string) (position, bool) {
	if i := strings.IndexByte(key, '['); i >= 0 {
		key = key[:i]
	}
	for key != "" {
		if pos, ok := ps[key]; ok {
			return pos, true
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return position{}, false
}

// keyAtLine returns the key written on a line, or "" if none or several
// (decode errors point at values; this says which key they belong to).
func (ps positions) keyAtLine(line int) string {
	found := ""
	for k, pos := range ps {
		if pos.Line == line {
			if found != "" {
				return ""
			}
			found = k
		}
	}
	return found
}
