package app

import "strings"

// WindowEnv is the environment for the window process: env, plus
// LANGUAGE=en where the locale is C with an encoding ("C.UTF-8"), which
// Fyne cannot parse and would complain about on the tray's stderr at
// every start and every widget that asks for the locale. LANGUAGE is
// only read for translations (GNU gettext and Fyne alike), so nothing
// else changes; a locale of plain "C" or "POSIX" Fyne handles itself.
func WindowEnv(env []string) []string {
	get := func(k string) string {
		v := ""
		for _, kv := range env {
			if name, val, ok := strings.Cut(kv, "="); ok && name == k {
				v = val // the last one wins, as getenv does
			}
		}
		return v
	}
	if get("LANGUAGE") != "" {
		return env
	}
	loc := ""
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} { // the order go-locale and gettext use
		if loc = get(k); loc != "" {
			break
		}
	}
	if !strings.HasPrefix(loc, "C.") && !strings.HasPrefix(loc, "POSIX.") {
		return env
	}
	return append(env[:len(env):len(env)], "LANGUAGE=en")
}
