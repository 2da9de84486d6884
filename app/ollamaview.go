package app

import "strconv"

// What the tray says about the `ollama serve` it started: pure functions
// of its status, tested by tables.

// OllamaLine is the tray menu's line about our server; "" when there is
// nothing to say (not ours, or running without trouble).
func OllamaLine(st OllamaStatus) string {
	switch {
	case st.GaveUp:
		return "Ollama keeps exiting; not restarted (" + st.LastExit + ")"
	case st.Ours && !st.Running && !st.NextStart.IsZero():
		return "Ollama exited (" + st.LastExit + "); restarting…"
	case st.Ours && st.Running && st.Restarts == 1:
		return "Ollama restarted once (last exit: " + st.LastExit + ")"
	case st.Ours && st.Running && st.Restarts > 1:
		return "Ollama restarted " + strconv.Itoa(st.Restarts) + " times (last exit: " + st.LastExit + ")"
	}
	return ""
}

// OllamaTip is the tooltip's suffix while our server is down.
func OllamaTip(st OllamaStatus) string {
	switch {
	case st.GaveUp:
		return " · Ollama stopped"
	case st.Ours && !st.Running && !st.NextStart.IsZero():
		return " · Ollama restarting"
	}
	return ""
}

// OllamaNote is the notification a status change deserves: our server
// exited (and is being restarted), or it is given up.
func OllamaNote(prev, cur OllamaStatus) (Note, bool) {
	switch {
	case cur.GaveUp && !prev.GaveUp:
		return Note{"Ollama keeps exiting", "VRAM Keeper stopped restarting `ollama serve` after repeated exits: " + cur.LastExit}, true
	case prev.Running && !cur.Running && !cur.NextStart.IsZero():
		return Note{"Ollama exited", "`ollama serve` ended (" + cur.LastExit + "); VRAM Keeper is starting it again."}, true
	}
	return Note{}, false
}

// WithOllamaLine puts the server's line under the menu's status line.
func WithOllamaLine(menu []MenuEntry, st OllamaStatus) []MenuEntry {
	return underStatus(menu, OllamaLine(st))
}

// underStatus puts line, unless empty, under the menu's status line.
func underStatus(menu []MenuEntry, line string) []MenuEntry {
	if line == "" || len(menu) == 0 {
		return menu
	}
	return append([]MenuEntry{menu[0], {Label: line, Disabled: true}}, menu[1:]...)
}
