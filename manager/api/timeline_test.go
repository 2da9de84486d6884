package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// timelineKeeper is a keeper with a timeline, as the manager keeps one.
type timelineKeeper struct {
	fakeKeeper
	ring  *timeline.Ring
	asked []time.Time
}

func (k *timelineKeeper) Timeline(_ context.Context, since time.Time) (timeline.Window, error) {
	k.asked = append(k.asked, since)
	return k.ring.Since(since), nil
}

var tl0 = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

// serveKeeper serves k's API until the test ends and dials it.
func serveKeeper(t *testing.T, k server.Manager) (context.Context, *httptest.Server, *client.Client) {
	t.Helper()
	hs := httptest.NewServer(server.New(k, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, server.Options{}).Handler())
	t.Cleanup(hs.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	c, err := client.Dial(ctx, hs.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	return ctx, hs, c
}

func TestTimeline(t *testing.T) {
	k := &timelineKeeper{fakeKeeper: fakeKeeper{models: map[string]bool{"qwen2.5:7b": true}}, ring: timeline.New(0, 0)}
	for i := range 5 {
		s := timeline.Sample{Time: tl0.Add(time.Duration(2*i) * time.Second), Models: map[string]uint64{"qwen2.5:7b": 4 << 30}, Budget: 7 << 30, Total: 8 << 30, Source: "nvml"}
		if err := k.ring.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.ring.Mark(timeline.Mark{Time: tl0.Add(3 * time.Second), Kind: timeline.MarkLoad, Model: "qwen2.5:7b"}); err != nil {
		t.Fatal(err)
	}
	ctx, hs, c := serveKeeper(t, k)
	r := client.NewRemote(c, nil)

	tests := []struct {
		name           string
		read           func() (timeline.Window, error)
		samples, marks int
	}{
		{"everything", func() (timeline.Window, error) { return c.Timeline(ctx, time.Time{}) }, 5, 1},
		{"after the third poll", func() (timeline.Window, error) { return c.Timeline(ctx, tl0.Add(4*time.Second)) }, 2, 0},
		{"through the window's Remote", func() (timeline.Window, error) { return r.Timeline(ctx, tl0.Add(2*time.Second)) }, 3, 1},
		{"after the newest", func() (timeline.Window, error) { return c.Timeline(ctx, tl0.Add(time.Minute)) }, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := tt.read()
			if err != nil {
				t.Fatal(err)
			}
			if len(w.Samples) != tt.samples || len(w.Marks) != tt.marks {
				t.Errorf("%d samples, %d marks; want %d, %d", len(w.Samples), len(w.Marks), tt.samples, tt.marks)
			}
			for _, s := range w.Samples {
				if s.Models["qwen2.5:7b"] != 4<<30 || s.Source != "nvml" {
					t.Errorf("sample lost fields over the wire: %+v", s)
				}
			}
		})
	}
	// The times the server passed on: the client's, to the nanosecond.
	if got := k.asked[1]; !got.Equal(tl0.Add(4 * time.Second)) {
		t.Errorf("server asked for since %v, want %v", got, tl0.Add(4*time.Second))
	}

	t.Run("a duration back from now", func(t *testing.T) {
		before := time.Now()
		resp, err := http.Get(hs.URL + "/keeper/v1/timeline?since=15m")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var w timeline.Window
		if err := json.NewDecoder(resp.Body).Decode(&w); err != nil || resp.StatusCode != 200 {
			t.Fatalf("HTTP %d, %v", resp.StatusCode, err)
		}
		got := k.asked[len(k.asked)-1]
		if lo, hi := before.Add(-15*time.Minute-time.Second), time.Now().Add(-15*time.Minute); got.Before(lo) || got.After(hi) {
			t.Errorf("since=15m asked for %v, want 15 minutes before the request", got)
		}
	})
	t.Run("a bad since", func(t *testing.T) {
		resp, err := http.Get(hs.URL + "/keeper/v1/timeline?since=yesterday")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Error, Code string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != 400 || body.Code != wire.CodeBadRequest || !strings.Contains(body.Error, `since="yesterday"`) {
			t.Errorf("HTTP %d %+v, want 400 bad_request naming the value", resp.StatusCode, body)
		}
	})
}

func TestParseSince(t *testing.T) {
	now := tl0
	tests := []struct {
		in   string
		want time.Time
		err  string
	}{
		{"", time.Time{}, ""},
		{"2026-01-02T11:59:58Z", tl0.Add(-2 * time.Second), ""},
		{"2026-01-02T13:59:58.5+02:00", tl0.Add(-1500 * time.Millisecond), ""},
		{" 15m ", tl0.Add(-15 * time.Minute), ""},
		{"1h30m", tl0.Add(-90 * time.Minute), ""},
		{"-5m", time.Time{}, "must be positive"},
		{"0s", time.Time{}, "must be positive"},
		{"yesterday", time.Time{}, `since="yesterday": want an RFC 3339 time`},
		{"2026-13-01T00:00:00Z", time.Time{}, "want an RFC 3339 time"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := wire.ParseSince(tt.in, now)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("= %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// FuzzParseSince: any query value is a time or a clear error, never a
// panic, and a time given in RFC 3339 comes back as given.
func FuzzParseSince(f *testing.F) {
	f.Add("2026-01-02T12:00:00Z")
	f.Fuzz(func(t *testing.T, v string) {
		got, err := wire.ParseSince(v, tl0)
		if err != nil {
			if !strings.Contains(err.Error(), "since=") {
				t.Fatalf("error %q does not name the parameter", err)
			}
			return
		}
		if want, perr := time.Parse(time.RFC3339Nano, strings.TrimSpace(v)); perr == nil && !got.Equal(want) {
			t.Fatalf("%q parsed as %v, want %v", v, got, want)
		}
	})
}
