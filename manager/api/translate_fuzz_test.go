package api_test

import (
	"strings"
	"testing"
)

// Whatever a client sends to /v1/responses or /v1/messages, the server
// answers in that API's shape (an answer, a stream or an error), keeps
// serving, and holds no model after the answer.
func FuzzResponses(f *testing.F) {
	fuzzTranslated(f, "/v1/responses", func(v map[string]any) bool {
		return v["object"] == "response"
	}, func(v map[string]any) bool {
		_, ok := path(v, "error", "message").(string)
		return ok
	})
}

func FuzzMessages(f *testing.F) {
	fuzzTranslated(f, "/v1/messages", func(v map[string]any) bool {
		return v["type"] == "message"
	}, func(v map[string]any) bool {
		_, ok := path(v, "error", "message").(string)
		return v["type"] == "error" && ok
	})
}

// fuzzTranslated posts each body to endpoint; isAnswer and isError tell
// the API's answer and error shapes.
func fuzzTranslated(f *testing.F, endpoint string, isAnswer func(map[string]any) bool, isError func(map[string]any) bool) {
	tr := newTranslateRig(f, chatReply{chunks: []string{"Hel", "lo"}})
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, b := tr.do(t, "POST", endpoint, string(body), nil)
		tr.settled(t)
		switch {
		case resp.StatusCode == 200 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"):
			if evs := readEvents(t, b); len(evs) == 0 {
				t.Fatalf("an empty stream for %q", body)
			}
		case resp.StatusCode == 200:
			if v := decode(t, b); !isAnswer(v) {
				t.Fatalf("200 without an answer for %q: %s", body, b)
			}
		case resp.StatusCode >= 400 && resp.StatusCode < 600:
			if v := decode(t, b); !isError(v) {
				t.Fatalf("%d not in the API's error shape for %q: %s", resp.StatusCode, body, b)
			}
		default:
			t.Fatalf("status %d for %q: %s", resp.StatusCode, body, b)
		}
	})
}
