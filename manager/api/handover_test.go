package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// POST /keeper/v1/window: the tray opens its window for a second start;
// a headless instance says it has none.
func TestOpenWindow(t *testing.T) {
	u := &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
	for _, tc := range []struct {
		name   string
		open   func() error
		status int
	}{
		{"tray", func() error { return nil }, 0},
		{"serve has no window", nil, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opened := 0
			var open func() error
			if tc.open != nil {
				open = func() error { opened++; return tc.open() }
			}
			hs := httptest.NewServer(server.New(&fakeKeeper{}, u, server.Options{OpenWindow: open}).Handler())
			defer hs.Close()
			c, err := client.Dial(context.Background(), hs.URL, "")
			if err != nil {
				t.Fatal(err)
			}
			err = c.OpenWindow(context.Background())
			var ae *client.Error
			switch {
			case tc.status == 0 && (err != nil || opened != 1):
				t.Fatalf("%v, opened %d", err, opened)
			case tc.status != 0 && (!errors.As(err, &ae) || ae.Status != tc.status || !strings.Contains(err.Error(), "no window")):
				t.Fatalf("%v, want HTTP %d saying it has no window", err, tc.status)
			}
		})
	}
}

// A client of another API version is refused with a clear message, which
// the client maps to ErrVersionMismatch.
func TestVersionMismatch(t *testing.T) {
	hs := httptest.NewServer(server.New(&fakeKeeper{}, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, server.Options{}).Handler())
	defer hs.Close()
	for _, tc := range []struct {
		version string
		status  int
	}{{"", 200}, {wire.APIVersion, 200}, {"0", 409}, {"2", 409}} {
		req, _ := http.NewRequest("GET", hs.URL+"/keeper/v1/status", nil)
		if tc.version != "" {
			req.Header.Set(wire.VersionHeader, tc.version)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get(wire.VersionHeader) != wire.APIVersion {
			t.Errorf("version %q: %d %s", tc.version, resp.StatusCode, b)
		}
		if tc.status == 409 && !strings.Contains(string(b), "version_mismatch") {
			t.Errorf("version %q: %s", tc.version, b)
		}
	}
}
