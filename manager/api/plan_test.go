package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
)

// POST /keeper/v1/plan crosses the wire whole, in both directions, as the
// Keeper a running instance is (client.Remote): the plan, and the
// manager's errors as its sentinels.
func TestPlanOverTheWire(t *testing.T) {
	f := &fakeKeeper{models: map[string]bool{"a/b:c": true, "d:1b": false}}
	up, _ := url.Parse("http://127.0.0.1:9")
	hs := httptest.NewServer(server.New(f, up, server.Options{}).Handler())
	defer hs.Close()
	ctx := context.Background()
	c, err := client.Dial(ctx, hs.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	r := client.NewRemote(c, nil)
	p, err := r.Plan(ctx, manager.PlanRequest{Model: "d:1b"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Model != "d:1b" || !p.CanLoad || !slices.Equal(p.Evict, []string{"a/b:c"}) {
		t.Errorf("plan %+v, want d:1b evicting a/b:c", p)
	}
	if p, err = r.Plan(ctx, manager.PlanRequest{Task: "chat"}); err != nil || p.Model != "a/b:c" || !p.Loaded {
		t.Errorf("plan for chat: %+v, %v", p, err)
	}
	for _, tc := range []struct {
		name string
		req  manager.PlanRequest
		want error
		code int
	}{
		{"unknown model", manager.PlanRequest{Model: "nope"}, manager.ErrModelUnknown, http.StatusNotFound},
		{"unknown task", manager.PlanRequest{Task: "juggle"}, manager.ErrUnknownTask, http.StatusBadRequest},
		{"never fits", manager.PlanRequest{Task: "huge"}, manager.ErrNeverFits, http.StatusInsufficientStorage},
		{"a model and a task", manager.PlanRequest{Model: "d:1b", Task: "chat"}, client.ErrBadRequest, http.StatusBadRequest},
	} {
		_, err := r.Plan(ctx, tc.req)
		var ae *client.Error
		if !errors.Is(err, tc.want) || !errors.As(err, &ae) || ae.Status != tc.code {
			t.Errorf("%s: %v, want %v with HTTP %d", tc.name, err, tc.want, tc.code)
		}
	}
	resp, err := hs.Client().Post(hs.URL+"/keeper/v1/plan", "application/json", strings.NewReader(`{"modle":"d:1b"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a misspelt field: HTTP %d, want 400", resp.StatusCode)
	}
	if strings.Contains(strings.Join(f.called(), ","), "load") {
		t.Errorf("a plan loaded something: %v", f.called())
	}
}
