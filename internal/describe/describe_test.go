package describe

import (
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
)

const gib = 1 << 30

var t0 = time.Date(2026, 1, 2, 12, 0, 0, 0, time.Local)

func TestLoading(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    manager.Snapshot
		want string
	}{
		{"nothing", manager.Snapshot{}, ""},
		{"seconds", manager.Snapshot{Loading: "qwen2.5:7b", LoadingSince: t0.Add(-12 * time.Second)}, "loading qwen2.5:7b (12 s)"},
		{"minutes", manager.Snapshot{Loading: "big:70b", LoadingSince: t0.Add(-185 * time.Second)}, "loading big:70b (3 min 5 s)"},
		{"clock behind", manager.Snapshot{Loading: "m", LoadingSince: t0.Add(time.Second)}, "loading m (0 s)"},
		{"no start", manager.Snapshot{Loading: "m"}, "loading m"},
	} {
		if got := Loading(tc.s, t0); got != tc.want {
			t.Errorf("%s: Loading = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestYielded(t *testing.T) {
	for _, tc := range []struct {
		s    manager.Snapshot
		want string
	}{
		{manager.Snapshot{}, ""},
		{manager.Snapshot{Yielded: true}, "gave the GPU back"},
		{manager.Snapshot{Yielded: true, YieldedModels: []string{"a"}}, "gave the GPU back (to restore: a)"},
		{manager.Snapshot{Yielded: true, YieldedModels: []string{"a", "b:7b"}}, "gave the GPU back (to restore: a, b:7b)"},
	} {
		if got := Yielded(tc.s); got != tc.want {
			t.Errorf("Yielded(%v) = %q, want %q", tc.s.YieldedModels, got, tc.want)
		}
	}
}

func TestModelWords(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		v                       manager.ModelView
		context, maxFit, cpu, r string
	}{
		{"idle at its own", manager.ModelView{NumCtx: 4096, MaxFitCtx: 32768}, "4096", "32768", "", ""},
		{"auto, idle", manager.ModelView{NumCtx: 4096, ContextAuto: true}, "auto", "none", "", ""},
		{"auto, loaded", manager.ModelView{NumCtx: 4096, ContextAuto: true, LoadedCtx: 16384, MaxFitCtx: 16384}, "auto: 16384", "16384", "", ""},
		{"loaded at another", manager.ModelView{NumCtx: 8192, LoadedCtx: 4096, CPUPercent: 38}, "8192, loaded at 4096", "none", "38 % on CPU", ""},
		{"failed", manager.ModelView{NumCtx: 4096, RetryAt: t0.Add(30 * time.Second)}, "4096", "none", "", "retry at 12:00:30"},
		{"failed long ago", manager.ModelView{NumCtx: 4096, RetryAt: t0.Add(-time.Second)}, "4096", "none", "", ""},
	} {
		if got := Context(tc.v); got != tc.context {
			t.Errorf("%s: Context = %q, want %q", tc.name, got, tc.context)
		}
		if got := MaxFit(tc.v); got != tc.maxFit {
			t.Errorf("%s: MaxFit = %q, want %q", tc.name, got, tc.maxFit)
		}
		if got := CPU(tc.v); got != tc.cpu {
			t.Errorf("%s: CPU = %q, want %q", tc.name, got, tc.cpu)
		}
		if got := Retry(tc.v, t0); got != tc.r {
			t.Errorf("%s: Retry = %q, want %q", tc.name, got, tc.r)
		}
	}
}

func TestEvent(t *testing.T) {
	at := "2026-01-02 12:00:00  "
	for _, tc := range []struct {
		name string
		e    manager.Event
		want string
	}{
		{"eviction", manager.Event{Kind: manager.EventEvicted, Model: "qwen2.5:7b", For: "llama3.2:3b", Bytes: 46 * gib / 10, Reason: "max loaded reached"},
			"evicted qwen2.5:7b (4.6 GiB) for llama3.2:3b — max loaded reached"},
		// The manager's own eviction reason only repeats the line.
		{"eviction, own reason", manager.Event{Kind: manager.EventEvicted, Model: "qwen2.5:7b", For: "llama3.2:3b", Bytes: 46 * gib / 10,
			Reason: "unloaded qwen2.5:7b (4.6 GiB) to make room for llama3.2:3b (2.0 GiB)"},
			"evicted qwen2.5:7b (4.6 GiB) for llama3.2:3b"},
		{"warm start", manager.Event{Kind: manager.EventLoaded, Model: "llama3.2:3b", Bytes: 2 * gib, Reason: "warm start: the best model for chat"},
			"loaded llama3.2:3b (2.0 GiB) — warm start: the best model for chat"},
		{"given back", manager.Event{Kind: manager.EventYielded, Model: "qwen2.5-coder:7b", Bytes: 5 * gib, Reason: "other programs need 3.1 GiB of the card"},
			"gave back qwen2.5-coder:7b (5.0 GiB) — other programs need 3.1 GiB of the card"},
		{"restored", manager.Event{Kind: manager.EventRestored, Model: "qwen2.5-coder:7b", Bytes: 5 * gib, Reason: "restored: other programs released the memory"},
			"restored qwen2.5-coder:7b (5.0 GiB) — other programs released the memory"},
		{"spilled", manager.Event{Kind: manager.EventSpilled, Model: "big:14b", Reason: "big:14b is 38 % on the CPU: Ollama could not fit it on the GPU"},
			"big:14b is 38 % on the CPU: Ollama could not fit it on the GPU"},
		{"unloaded by ollama", manager.Event{Kind: manager.EventUnloadedByOllama, Model: "m", Reason: "Ollama unloaded m on its own (ollama stop)"},
			"Ollama unloaded m on its own (ollama stop)"},
		{"timed out", manager.Event{Kind: manager.EventLoadFailed, Model: "m", Reason: "loaded from the window", Error: "m did not load within 10s (load_timeout)"},
			"failed to load m — loaded from the window: m did not load within 10s (load_timeout)"},
		{"down", manager.Event{Kind: manager.EventOllamaDown, Reason: "poll"}, "Ollama went away"},
	} {
		tc.e.Time = t0
		if got := Event(tc.e); got != at+tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, at+tc.want)
		}
	}
}

func TestStatus(t *testing.T) {
	s := manager.Snapshot{Loading: "big:14b"}
	retry := t0.Add(time.Minute)
	for _, tc := range []struct {
		m    manager.ModelView
		want string
	}{
		{manager.ModelView{Name: "big:14b", State: manager.Idle}, "loading"},
		{manager.ModelView{Name: "spilled:7b", State: manager.Loaded, CPUPercent: 38}, "loaded · 38 % on CPU"},
		{manager.ModelView{Name: "f", State: manager.Failed, RetryAt: retry}, "failed · retry at " + retry.Local().Format("15:04:05")},
		{manager.ModelView{Name: "new"}, "idle"},
		{manager.ModelView{Name: "next:3b", State: manager.Idle, WarmPercent: 80}, "idle · warm 80 %"},
		{manager.ModelView{Name: "on:3b", State: manager.Loaded, Loaded: true, WarmPercent: 100}, "loaded"},
	} {
		if got := Status(s, tc.m, t0); got != tc.want {
			t.Errorf("Status(%s) = %q, want %q", tc.m.Name, got, tc.want)
		}
	}
}
