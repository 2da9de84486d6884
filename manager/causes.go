package manager

import "strings"

// What an event counts as, for counters (Prometheus): whether it is a load
// of ours and how it ended, and why a model left the card. The reasons
// the scheduler writes are sentences for people; these words are few and
// fixed, so they can label a time series.

// Reasons the scheduler writes that the counting below tells apart.
const (
	reasonAdopted   = "found loaded in Ollama (adopted)"
	reasonUserYield = "gave the GPU back at the user's request"
)

// Load outcomes (LoadOutcome).
const (
	LoadOK      = "ok"
	LoadFailed  = "failed"
	LoadTimeout = "timeout"
)

// Eviction causes (EvictionCause).
const (
	// EvictMakeRoom: unloaded to make room for another model's load.
	EvictMakeRoom = "make_room"
	// EvictOverLimits: what was loaded no longer fit the budget or the
	// model count (a smaller budget, a model another client loaded).
	EvictOverLimits = "over_limits"
	// EvictOtherPrograms: other programs took the card; it comes back
	// once they release it.
	EvictOtherPrograms = "other_programs"
	// EvictYield: the user gave the GPU back.
	EvictYield = "yield"
	// EvictByOllama: it left the card without an unload of ours (ollama
	// stop, another client, Ollama's own eviction, a restart).
	EvictByOllama = "ollama"
)

// EvictionCauses are every cause EvictionCause returns.
var EvictionCauses = []string{EvictMakeRoom, EvictOverLimits, EvictOtherPrograms, EvictYield, EvictByOllama}

// LoadOutcome says how a load of ours ended: LoadOK (loaded or restored),
// LoadTimeout (past its deadline), LoadFailed (anything else, refusals
// before Ollama was asked included); "" for an event that is no load of
// ours (a model found loaded, other kinds).
func (e Event) LoadOutcome() string {
	switch e.Kind {
	case EventLoaded:
		if e.Reason == reasonAdopted {
			return ""
		}
		return LoadOK
	case EventRestored:
		return LoadOK
	case EventLoadFailed:
		if strings.HasSuffix(e.Error, ErrTimedOut.Error()) {
			return LoadTimeout
		}
		return LoadFailed
	}
	return ""
}

// EvictionCause says why an event took a model off the card without
// anyone asking for that model's unload, or "" when it did not (an unload
// by request, other kinds).
func (e Event) EvictionCause() string {
	switch e.Kind {
	case EventEvicted:
		if e.For != "" {
			return EvictMakeRoom
		}
		return EvictOverLimits
	case EventYielded:
		if e.Reason == reasonUserYield {
			return EvictYield
		}
		return EvictOtherPrograms
	case EventUnloadedByOllama:
		return EvictByOllama
	}
	return ""
}
