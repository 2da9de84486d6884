package api

import (
	"net/url"
	"path"
	"strings"
	"testing"
	"unicode"
)

func TestCanonicalPath(t *testing.T) {
	cases := []struct {
		raw, want string // want "" for a refused path
	}{
		{"/api/copy", "/api/copy"},
		{"/api%2Fcopy", "/api/copy"},
		{"/api%2fcopy", "/api/copy"},
		{"%2Fapi%2Fcopy", ""}, // no leading slash as sent: Go's server refuses it before us
		{"/%61pi/%63opy", "/api/copy"},
		{"/api%252Fcopy", "/api/copy"},      // encoded twice
		{"/api%25252Fcopy", "/api/copy"},    // three times
		{"/api%2525252Fcopy", ""},           // four: nobody does that but to hide it
		{"/api/./copy", "/api/copy"},        // dot segments
		{"/x/../api/copy", "/api/copy"},     //
		{"/x/%2e%2e/api/copy", "/api/copy"}, // encoded dots
		{"/x%2F..%2Fapi%2Fcopy", "/api/copy"},
		{"//api//copy/", "/api/copy"},
		{"/../../api/copy", "/api/copy"},
		{"/api%00/copy", ""},       // control characters
		{"/api%25zz", ""},          // a % that is not an escape once decoded
		{"/API/copy", "/API/copy"}, // case is kept: Ollama's router is case-sensitive
		{"/keeper/v1/models/hf.co%2Fuser%2Fm%3AQ4_K_M/load", "/keeper/v1/models/hf.co/user/m:Q4_K_M/load"},
		{"/v1/chat/completions", "/v1/chat/completions"},
		{"/", "/"},
	}
	for _, tc := range cases {
		u, err := url.ParseRequestURI(tc.raw)
		if err != nil {
			if tc.want != "" {
				t.Errorf("%s: not a request URI: %v", tc.raw, err)
			}
			continue
		}
		got, err := canonicalPath(u)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: %q, want it refused", tc.raw, got)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("%s: %q (%v), want %q", tc.raw, got, err, tc.want)
		}
	}
}

// sensitive are paths whose every spelling must route as themselves: the
// admin endpoints and those that load a model.
var sensitive = []string{
	"/api/copy", "/api/delete", "/api/pull", "/api/push", "/api/create", "/api/generate", "/api/chat",
	"/api/embed", "/api/embeddings", "/v1/chat/completions", "/v1/messages", "/keeper/v1/yield",
}

// FuzzCanonicalPath: for any request path, the canonical one is what
// Ollama's router sees once it is forwarded (decoded once by Go's server,
// as gin routes it), it is clean and holds no escape, and any path that
// decodes, in up to three layers, to a sensitive endpoint is routed as
// that endpoint or refused.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{
		"/api/copy", "/api%2Fcopy", "/api%252Fcopy", "/%61pi%2f%64elete", "/x/%2e%2e/api/pull", "//api//pull/",
		"/api%2Fgenerate", "/api/generate?x=%2F", "/a%2F..%2F..%2Fapi%2Fchat", "/keeper%2Fv1%2Fyield", "/%25", "/\u00e9",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil || u.Opaque != "" || u.Host != "" {
			return // Go's server refuses it, or reads no path from it
		}
		c, err := canonicalPath(u)
		if err != nil {
			return
		}
		if !strings.HasPrefix(c, "/") || path.Clean(c) != c || strings.Contains(c, "%") || strings.ContainsFunc(c, unicode.IsControl) {
			t.Fatalf("%q: canonical %q is not clean", raw, c)
		}
		// Forwarded with its escaped form, Ollama routes on this.
		fwd, err := url.ParseRequestURI((&url.URL{Path: c}).EscapedPath())
		if err != nil || fwd.Path != c {
			t.Fatalf("%q: canonical %q reaches Ollama as %q (%v)", raw, c, fwd, err)
		}
		p := u.Path
		for range maxLayers {
			for _, s := range sensitive {
				if path.Clean(p) == s && c != s {
					t.Fatalf("%q decodes to %s but routes as %q", raw, s, c)
				}
			}
			if p, err = url.PathUnescape(p); err != nil {
				return
			}
		}
	})
}
