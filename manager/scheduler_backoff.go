package manager

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Backoff: a failed load is remembered per model and context length, so
// a retry within its backoff fails at once instead of evicting again.

// failure is the memory of failed loads of one model at one context
// length; it is saved, so a restart (or the next command) backs off too.
type failure struct {
	Count int       `json:"count"`
	At    time.Time `json:"at"`
	Until time.Time `json:"until"`
	Err   string    `json:"error"`
}

// remember records a failed load of md at numCtx, for the backoff.
func (s *scheduler) remember(md target, numCtx int, err error) {
	md.lastErr = err.Error()
	s.fx.Changed(md.name)
	key := keyOf(md.spec, numCtx)
	f := s.failed[key]
	f.Count++
	f.At, f.Err = s.now(), err.Error()
	f.Until = f.At.Add(min(backoffBase<<(f.Count-1), backoffMax))
	s.failed[key] = f
}

// backingOff refuses a load that failed lately, until its backoff ends.
func (s *scheduler) backingOff(md spec, numCtx int) error {
	f, ok := s.failed[keyOf(md, numCtx)]
	if !ok || !s.now().Before(f.Until) {
		return nil
	}
	return fmt.Errorf("%s failed to load %s ago (%s); not trying again for %s: %w", md.name,
		s.now().Sub(f.At).Round(time.Second), f.Err, f.Until.Sub(s.now()).Round(time.Second), ErrLoadFailed)
}

// retryAt is when the model installed as name (digest) may be tried
// again at its own context length numCtx (zero when it may now).
func (s *scheduler) retryAt(name, digest string, numCtx int) time.Time {
	if len(s.failed) == 0 {
		return time.Time{}
	}
	if f, ok := s.failed[loadKeyOf(name, digest, numCtx)]; ok && s.now().Before(f.Until) {
		return f.Until
	}
	return time.Time{}
}

// loadKey names a model at a context length (the failure memory's key).
type loadKey struct {
	id     string // digest, or the name when there is none
	numCtx int
}

func (k loadKey) String() string { return fmt.Sprintf("%s@%d", k.id, k.numCtx) }

// failures are the backoffs still running, for the state file.
func (s *scheduler) failures() map[string]failure {
	out := map[string]failure{}
	for k, f := range s.failed {
		if s.now().Before(f.Until) {
			out[k.String()] = f
		}
	}
	return out
}

// resumeBackoffs takes back the backoffs a state file kept.
func (s *scheduler) resumeBackoffs(saved map[string]failure) {
	for k, f := range saved {
		i := strings.LastIndexByte(k, '@')
		n, err := strconv.Atoi(k[i+1:])
		if i < 0 || err != nil || !s.now().Before(f.Until) {
			continue
		}
		s.failed[loadKey{k[:i], n}] = f
	}
}

func keyOf(md spec, numCtx int) loadKey { return loadKeyOf(md.name, md.digest, numCtx) }

func loadKeyOf(name, digest string, numCtx int) loadKey {
	if digest == "" {
		return loadKey{name, numCtx}
	}
	return loadKey{digest, numCtx}
}
