package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// POST /keeper/v1/pull streams the progress, and the client hands each
// update on; a model the registry lacks is ErrModelUnknown on the client's
// side too, though the answer had begun; with a token the endpoint needs
// allow_admin, as Ollama's own pull does through the proxy.
func TestPullOverTheWire(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name, model string
		opt         server.Options
		token       string
		steps       []string
		check       func(error) bool
	}{
		{"pulled", "tiny:latest", server.Options{}, "", []string{"pulling manifest", "pulling sha256:1", "success"},
			func(err error) bool { return err == nil }},
		{"not in the registry", "missing:latest", server.Options{}, "", []string{"pulling manifest"},
			func(err error) bool { return errors.Is(err, manager.ErrModelUnknown) }},
		{"no name", " ", server.Options{}, "", nil, func(err error) bool { return errors.Is(err, client.ErrBadRequest) }},
		{"token without allow_admin", "tiny:latest", server.Options{Token: "t"}, "t", nil, func(err error) bool {
			var ae *client.Error
			return errors.As(err, &ae) && ae.Status == http.StatusForbidden && strings.Contains(ae.Message, "allow_admin")
		}},
		{"token with allow_admin", "tiny:latest", server.Options{Token: "t", AllowAdmin: true}, "t",
			[]string{"pulling manifest", "pulling sha256:1", "success"}, func(err error) bool { return err == nil }},
	} {
		k := &fakeKeeper{}
		hs := httptest.NewServer(server.New(k, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, tc.opt).Handler())
		c, err := client.Dial(ctx, hs.URL, tc.token)
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		err = c.Pull(ctx, serving.PullRequest{Name: tc.model}, func(p serving.PullProgress) { steps = append(steps, p.Status) })
		hs.Close()
		if !tc.check(err) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if strings.Join(steps, ",") != strings.Join(tc.steps, ",") {
			t.Errorf("%s: progress %q, want %q", tc.name, steps, tc.steps)
		}
		if _, installed := k.models[tc.model]; installed != (err == nil) {
			t.Errorf("%s: installed %v with error %v", tc.name, installed, err)
		}
	}
}
