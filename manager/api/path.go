package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"unicode"
)

// Every decision about a request (which handler, whether it is an admin
// call, whether it loads a model) is made on the path Ollama will route
// it on, and the request is forwarded with exactly that path. Go's server
// decodes the request path once (URL.Path) and Ollama's router (gin)
// matches on that decoded path, so /api%2Fcopy is /api/copy to Ollama;
// the standard mux instead matches the escaped form segment by segment,
// where /api%2Fcopy is one segment and routes nowhere known. So the guard
// rewrites the path before any routing: decoded until no escape is left
// (a double encoding, /api%252Fcopy, must not reach a newer server that
// decodes twice as anything but /api/copy), cleaned of dot segments and
// doubled slashes, and sent on in that form.

// maxLayers bounds how many layers of percent-encoding a path may carry,
// the one Go's server decodes included; nobody encodes a path four times
// but to hide it.
const maxLayers = 3

// errPath marks a request path refused before routing.
var errPath = errors.New("request path refused")

// canonicalPath is u's path as it is routed and forwarded: decoded until
// no escape is left, dot segments and doubled slashes removed. A path that
// cannot be read one way only (an escape that is not one, too many layers
// of encoding, control characters) is an error.
func canonicalPath(u *url.URL) (string, error) {
	p := u.Path // decoded once by the server, as Ollama's router reads it
	for layer := 1; strings.Contains(p, "%"); layer++ {
		q, err := url.PathUnescape(p)
		if err != nil || layer == maxLayers {
			return "", fmt.Errorf("%w: %q holds a %% that is not a plain character after decoding it", errPath, u.EscapedPath())
		}
		p = q
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: %q does not start with /", errPath, u.EscapedPath())
	}
	if strings.ContainsFunc(p, unicode.IsControl) {
		return "", fmt.Errorf("%w: %q holds control characters", errPath, u.EscapedPath())
	}
	return path.Clean(p), nil
}

// canonicalize rewrites r's path to its canonical form in place (the
// request is the server's own, not yet routed).
func canonicalize(r *http.Request) error {
	p, err := canonicalPath(r.URL)
	if err != nil {
		return err
	}
	r.URL.Path, r.URL.RawPath = p, ""
	return nil
}
