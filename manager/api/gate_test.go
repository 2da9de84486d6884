package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
)

// heldKeeper holds every Acquire until the test lets it go, so that the
// bodies of the requests waiting in it stay in flight.
type heldKeeper struct {
	*holdKeeper
	entered chan struct{}
	let     chan struct{}
}

func (k *heldKeeper) Acquire(ctx context.Context, name, reason string) (func(), manager.LoadResult, error) {
	k.entered <- struct{}{}
	select {
	case <-k.let:
	case <-ctx.Done():
		return func() {}, manager.LoadResult{}, ctx.Err()
	}
	return k.holdKeeper.Acquire(ctx, name, reason)
}

// TestBodiesInFlightBounded: the bodies read whole at once are bounded
// across requests. While one large body is in flight, a second that does
// not fit beside it waits a moment and gets 503 with Retry-After, without
// reaching the manager; once the first is done, the same request passes.
func TestBodiesInFlightBounded(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"model":"a/b:c","response":"x","done":true}`)
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	k := &heldKeeper{holdKeeper: newHoldKeeper(), entered: make(chan struct{}, 4), let: make(chan struct{})}
	hs := httptest.NewServer(server.New(k, u, server.Options{BodiesInFlight: 1 << 20}).Handler())
	t.Cleanup(hs.Close)
	big := `{"model":"a/b:c","prompt":"` + strings.Repeat("x", 700<<10) + `"}`
	post := func() *http.Response {
		resp, err := http.Post(hs.URL+"/api/generate", "application/json", strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	first := make(chan *http.Response, 1)
	go func() { first <- post() }()
	<-k.entered // the first body is read and waits in the manager
	resp := post()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a second large body beside the first: %d, Retry-After %q; want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if len(k.entered) != 0 {
		t.Error("the refused request reached the manager")
	}
	close(k.let)
	if r := <-first; r.StatusCode != 200 {
		t.Fatalf("the first request: %d", r.StatusCode)
	}
	if resp := post(); resp.StatusCode != 200 {
		t.Errorf("once the first is done: %d, want 200", resp.StatusCode)
	}
}
