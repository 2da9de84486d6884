// Package describe puts the manager's state and events into the words
// users read. The tray, the window and the command line share it, so a
// load in progress, a context length or a model spilled onto the CPU reads
// the same everywhere. It is plain text: no GUI toolkit.
package describe

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// Loading says what is loading now and for how long: "loading
// qwen2.5:7b (12 s)"; "" when nothing is.
func Loading(s manager.Snapshot, now time.Time) string {
	if s.Loading == "" {
		return ""
	}
	if s.LoadingSince.IsZero() {
		return "loading " + s.Loading
	}
	return fmt.Sprintf("loading %s (%s)", s.Loading, Seconds(now.Sub(s.LoadingSince)))
}

// Seconds renders a duration in whole seconds ("12 s"), minutes past two
// ("3 min 5 s"): a load is watched, not measured.
func Seconds(d time.Duration) string {
	s := max(int(d.Round(time.Second)/time.Second), 0)
	if s < 120 {
		return fmt.Sprintf("%d s", s)
	}
	return fmt.Sprintf("%d min %d s", s/60, s%60)
}

// Yielded says the GPU was given back, and what a restore puts back: "gave
// the GPU back (to restore: a, b)"; "" when it was not.
func Yielded(s manager.Snapshot) string {
	if !s.Yielded {
		return ""
	}
	if len(s.YieldedModels) == 0 {
		return "gave the GPU back"
	}
	return "gave the GPU back (to restore: " + strings.Join(s.YieldedModels, ", ") + ")"
}

// Sentence starts a phrase with a capital letter, for a line of its own.
func Sentence(phrase string) string {
	if phrase == "" {
		return ""
	}
	return strings.ToUpper(phrase[:1]) + phrase[1:]
}

// Context is a model's context length as set: "auto" when it is picked at
// each load, else the tokens it loads at. A model loaded at another
// context says so: "8192, loaded at 4096".
func Context(v manager.ModelView) string {
	set := strconv.Itoa(v.NumCtx)
	if v.ContextAuto {
		set = "auto"
	}
	switch {
	case v.LoadedCtx == 0:
		return set
	case v.ContextAuto:
		return "auto: " + strconv.Itoa(v.LoadedCtx)
	case v.LoadedCtx != v.NumCtx:
		return fmt.Sprintf("%s, loaded at %d", set, v.LoadedCtx)
	}
	return set
}

// MaxFit is the largest context that fits the room now: "32768", or
// "none" when not even the smallest does.
func MaxFit(v manager.ModelView) string {
	if v.MaxFitCtx == 0 {
		return "none"
	}
	return strconv.Itoa(v.MaxFitCtx)
}

// CPU says how much of a model Ollama put on the CPU: "38 % on CPU"; ""
// when all of it is on the GPU (or there is no GPU, where nothing is
// flagged).
func CPU(v manager.ModelView) string {
	if v.CPUPercent <= 0 {
		return ""
	}
	return fmt.Sprintf("%d %% on CPU", v.CPUPercent)
}

// Warm says how much of a model that is not loaded sits in the page cache,
// so that loading it reads RAM: "warm 80 %"; "" when none does or it is
// loaded.
func Warm(v manager.ModelView) string {
	if v.Loaded || v.WarmPercent <= 0 {
		return ""
	}
	return fmt.Sprintf("warm %d %%", v.WarmPercent)
}

// Retry says when a model that failed to load is tried again: "retry at
// 15:04:05"; "" when it may be tried now.
func Retry(v manager.ModelView, now time.Time) string {
	if v.RetryAt.IsZero() || !v.RetryAt.After(now) {
		return ""
	}
	return "retry at " + v.RetryAt.Local().Format("15:04:05")
}

// Status is a model's state with what a user needs to know beside it:
// "loading", "loaded · 38 % on CPU", "failed · retry at 15:04:05".
func Status(s manager.Snapshot, m manager.ModelView, now time.Time) string {
	st := string(m.State)
	if s.Loading == m.Name {
		st = string(manager.Loading)
	}
	if st == "" {
		st = string(manager.Idle)
	}
	for _, more := range []string{CPU(m), Warm(m), Retry(m, now)} {
		if more != "" {
			st += " · " + more
		}
	}
	return st
}

// Event renders one history event: "2026-01-02 15:04:05  evicted
// qwen2.5:7b (4.6 GiB) for llama3.2:3b".
func Event(e manager.Event) string {
	var b strings.Builder
	b.WriteString(e.Time.Local().Format("2006-01-02 15:04:05"))
	b.WriteString("  ")
	reason := e.Reason
	switch e.Kind {
	case manager.EventLoaded:
		fmt.Fprintf(&b, "loaded %s", e.Model)
	case manager.EventUnloaded:
		fmt.Fprintf(&b, "unloaded %s", e.Model)
	case manager.EventEvicted:
		// The size is the evicted model's, so it goes next to its name,
		// not after the model it made room for.
		fmt.Fprintf(&b, "evicted %s", e.Model)
		if e.Bytes > 0 {
			fmt.Fprintf(&b, " (%s)", config.FormatBytes(e.Bytes))
		}
		if e.For != "" {
			fmt.Fprintf(&b, " for %s", e.For)
		}
		// The manager's eviction reason ("unloaded A (4.6 GiB) to make
		// room for B (2.0 GiB)") restates the line; only another adds news.
		if strings.HasPrefix(reason, "unloaded "+e.Model+" ") {
			reason = ""
		}
	case manager.EventLoadFailed:
		fmt.Fprintf(&b, "failed to load %s", e.Model)
	case manager.EventYielded:
		fmt.Fprintf(&b, "gave back %s", e.Model)
	case manager.EventRestored:
		fmt.Fprintf(&b, "restored %s", e.Model)
		reason = RestoredReason(reason)
	case manager.EventPulled:
		fmt.Fprintf(&b, "downloaded %s", e.Model)
	case manager.EventOllamaDown:
		b.WriteString("Ollama went away")
		reason = ""
	case manager.EventOllamaUp:
		b.WriteString("Ollama is back")
		reason = ""
	case manager.EventSpilled, manager.EventUnloadedByOllama:
		// The manager's reason is a whole sentence naming the model.
		if reason == "" {
			reason = fmt.Sprintf("%s %s", e.Kind, e.Model)
		}
		b.WriteString(reason)
		reason = ""
	default:
		fmt.Fprintf(&b, "%s %s", e.Kind, e.Model)
	}
	switch e.Kind {
	case manager.EventLoaded, manager.EventUnloaded, manager.EventYielded, manager.EventRestored, manager.EventPulled:
		if e.Bytes > 0 {
			fmt.Fprintf(&b, " (%s)", config.FormatBytes(e.Bytes))
		}
	}
	if reason != "" {
		b.WriteString(" — " + reason)
	}
	if e.Error != "" {
		b.WriteString(": " + e.Error)
	}
	return b.String()
}

// RestoredReason is why a model was put back, without the "restored: "
// the manager's reason starts with.
func RestoredReason(reason string) string {
	return strings.TrimPrefix(reason, "restored: ")
}
