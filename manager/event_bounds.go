package manager

import "unicode/utf8"

// What one event may hold. Reasons and errors can carry what a client
// sent (a load's reason, a model or task name it made up, Ollama's error
// text), and the history keeps 500 events in memory and on disk: bounded
// by count alone, 150 loads with a 1 MiB reason kept 100 MB and GET
// history sent 105 MB. Cut, an event keeps its start and says it was cut.
const (
	maxEventText = 1 << 10 // a reason, an error
	maxEventName = 256     // a model name
)

// bounded is e with every text cut to its limit.
func (e Event) bounded() Event {
	e.Model, e.For = Clip(e.Model, maxEventName), Clip(e.For, maxEventName)
	e.Reason, e.Error = Clip(e.Reason, maxEventText), Clip(e.Error, maxEventText)
	return e
}

// Clip cuts s to at most n bytes on a character boundary, marked with an
// ellipsis: for texts a client may have made up, before they are kept or
// logged.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
