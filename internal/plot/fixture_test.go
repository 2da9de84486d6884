package plot

import (
	"time"

	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

const (
	gib = 1 << 30
	mib = 1 << 20
)

var t0 = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

func min_(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

// anHour is an hour of 2 s polls on an 8 GiB card with a 7 GiB budget: a
// 7B coder loaded at 12:05, a 3B chat model at 12:15, a game that takes
// 3 GiB from 12:30 (the keeper yields the coder at 12:31 and restores it at
// 12:46, after the game ends at 12:45), the chat model evicted at 12:50 for
// a 4B model, and a failed load at 12:55. The poll stops from 12:20 to
// 12:22 (the app was not running).
func anHour() timeline.Window {
	var w timeline.Window
	for t := t0; !t.After(min_(60)); t = t.Add(2 * time.Second) {
		if !t.Before(min_(20)) && t.Before(min_(22)) {
			continue
		}
		s := timeline.Sample{Time: t, Models: map[string]uint64{}, Others: 300 * mib, Budget: 7 * gib, Total: 8 * gib, Source: "nvml"}
		if !t.Before(min_(5)) && (t.Before(min_(31)) || !t.Before(min_(46))) {
			s.Models["qwen2.5-coder:7b"] = 4700 * mib
		}
		if !t.Before(min_(15)) && t.Before(min_(50)) {
			s.Models["llama3.2:3b"] = 2300 * mib
		}
		if !t.Before(min_(50)) {
			s.Models["gemma3:4b"] = 2100 * mib
		}
		if !t.Before(min_(30)) && t.Before(min_(45)) {
			s.Others += 3 * gib
		}
		w.Samples = append(w.Samples, s)
	}
	w.Marks = []timeline.Mark{
		{Time: min_(5), Kind: timeline.MarkLoad, Model: "qwen2.5-coder:7b"},
		{Time: min_(15), Kind: timeline.MarkLoad, Model: "llama3.2:3b"},
		{Time: min_(31), Kind: timeline.MarkYield, Model: "qwen2.5-coder:7b"},
		{Time: min_(46), Kind: timeline.MarkRestore, Model: "qwen2.5-coder:7b"},
		{Time: min_(50), Kind: timeline.MarkEviction, Model: "llama3.2:3b"},
		{Time: min_(50), Kind: timeline.MarkLoad, Model: "gemma3:4b"},
		{Time: min_(55), Kind: timeline.MarkFailedLoad, Model: "mistral-small:24b"},
	}
	return w
}
