package app

import (
	"slices"
	"testing"
)

func TestWindowEnv(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		add  bool
	}{
		{"C.UTF-8", []string{"HOME=/root", "LANG=C.UTF-8"}, true},
		{"LC_ALL wins over LANG", []string{"LANG=de_DE.UTF-8", "LC_ALL=C.utf8"}, true},
		{"a real locale", []string{"LANG=de_DE.UTF-8"}, false},
		{"LC_ALL real, LANG C", []string{"LANG=C.UTF-8", "LC_ALL=fr_FR.UTF-8"}, false},
		{"plain C is fine for Fyne", []string{"LANG=C"}, false},
		{"LANGUAGE set by the user", []string{"LANG=C.UTF-8", "LANGUAGE=fr"}, false},
		{"nothing set", []string{"HOME=/root"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := WindowEnv(slices.Clone(tc.env))
			added := slices.Contains(got, "LANGUAGE=en")
			if added != tc.add || len(got) != len(tc.env)+btoi(tc.add) {
				t.Fatalf("WindowEnv(%q) = %q", tc.env, got)
			}
		})
	}
}
