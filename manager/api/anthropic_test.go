package api_test

import (
	"slices"
	"strings"
	"testing"
)

// /v1/messages through the budget: the alias resolved, the model held
// until the answer ends, the load options forced, the answer in the
// Messages API's shape.
func TestMessages(t *testing.T) {
	hello := chatReply{chunks: []string{"Hel", "lo"}}
	for _, tc := range []struct {
		name  string
		reply chatReply
		body  string
		check func(t *testing.T, b []byte)
	}{{
		name: "plain", reply: hello,
		body: `{"model":"auto:chat","max_tokens":8,"thinking":{"type":"enabled","budget_tokens":100},"messages":[{"role":"user","content":"hi"}]}`,
		check: func(t *testing.T, b []byte) {
			v := decode(t, b)
			if v["type"] != "message" || v["role"] != "assistant" || v["model"] != "a/b:c" || v["stop_reason"] != "end_turn" {
				t.Errorf("got %s, want an assistant message from a/b:c ending its turn", b)
			}
			if got := path(v, "content", 0, "text"); got != "Hello" {
				t.Errorf("text %v, want Hello", got)
			}
			if path(v, "usage", "input_tokens") != float64(5) || path(v, "usage", "output_tokens") != float64(2) {
				t.Errorf("usage %v", v["usage"])
			}
		},
	}, {
		name: "streamed", reply: hello,
		body: `{"model":"a/b:c","max_tokens":8,"stream":true,"system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
		check: func(t *testing.T, b []byte) {
			evs := readEvents(t, b)
			var text strings.Builder
			for _, e := range evs {
				if e.data["type"] != e.name {
					t.Errorf("event %q has type %v", e.name, e.data["type"])
				}
				if e.name == "content_block_delta" {
					text.WriteString(path(e.data, "delta", "text").(string))
				}
			}
			want := []string{"message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}
			if n := names(evs); !slices.Equal(n, want) || text.String() != "Hello" {
				t.Fatalf("events %v, text %q; want %v spelling Hello", n, text.String(), want)
			}
			if m := path(evs[0].data, "message", "model"); m != "a/b:c" {
				t.Errorf("message_start names %v, want a/b:c", m)
			}
		},
	}, {
		name: "error inside the stream", reply: chatReply{chunks: []string{"Hel"}, fail: "runner crashed"},
		body: `{"model":"a/b:c","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		check: func(t *testing.T, b []byte) {
			evs := readEvents(t, b)
			last := evs[len(evs)-1]
			if last.name != "error" || path(last.data, "error", "message") != "runner crashed" || path(last.data, "error", "type") != "api_error" {
				t.Errorf("last event %+v, want an api_error event saying runner crashed", last)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTranslateRig(t, tc.reply)
			resp, b := tr.do(t, "POST", "/v1/messages", tc.body, map[string]string{"anthropic-version": "2023-06-01"})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			tc.check(t, b)
			sent := tr.lastSent(t)
			if sent["model"] != "a/b:c" || sent["keep_alive"] != float64(-1) {
				t.Errorf("ollama got model %v keep_alive %v; want a/b:c, -1", sent["model"], sent["keep_alive"])
			}
			if o := path(sent, "options"); path(o, "num_ctx") != float64(2048) || path(o, "num_predict") != float64(8) {
				t.Errorf("ollama got options %v; want num_ctx 2048 and num_predict 8 (max_tokens)", o)
			}
			// Ollama relaxes thinking for Anthropic clients; /api/chat
			// would refuse it for a model that cannot think.
			if th, ok := sent["think"]; ok {
				t.Errorf("ollama got think %v; want it unset", th)
			}
			if acq := tr.settled(t); acq["a/b:c"] != 1 {
				t.Errorf("holds %v, want a/b:c once", acq)
			}
		})
	}
}

// Refusals come in Anthropic's error shape, and nothing is held.
func TestMessagesErrors(t *testing.T) {
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	for _, tc := range []struct {
		name, body    string
		reply         chatReply
		status        int
		errType, text string
	}{
		{"malformed JSON", `{"model":`, chatReply{}, 400, "invalid_request_error", "malformed JSON"},
		{"no model", `{"max_tokens":8,` + msgs + `}`, chatReply{}, 400, "invalid_request_error", "model is required"},
		{"no max_tokens", `{"model":"a/b:c",` + msgs + `}`, chatReply{}, 400, "invalid_request_error", "max_tokens is required"},
		{"no messages", `{"model":"a/b:c","max_tokens":8}`, chatReply{}, 400, "invalid_request_error", "messages is required"},
		{"bad content block", `{"model":"a/b:c","max_tokens":8,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"!!"}}]}]}`, chatReply{}, 400, "invalid_request_error", "image"},
		{"unknown model", `{"model":"nope:1b","max_tokens":8,` + msgs + `}`, chatReply{}, 404, "not_found_error", "nope:1b"},
		{"larger than the budget", `{"model":"auto:huge","max_tokens":8,` + msgs + `}`, chatReply{}, 507, "api_error", "no model fits"},
		{"ollama fails", `{"model":"a/b:c","max_tokens":8,` + msgs + `}`, chatReply{status: 500, fail: "out of memory"}, 500, "api_error", "out of memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTranslateRig(t, tc.reply)
			resp, b := tr.do(t, "POST", "/v1/messages", tc.body, nil)
			v := decode(t, b)
			msg, _ := path(v, "error", "message").(string)
			if resp.StatusCode != tc.status || v["type"] != "error" || path(v, "error", "type") != tc.errType || !strings.Contains(msg, tc.text) {
				t.Fatalf("%d %s, want %d with an Anthropic %s containing %q", resp.StatusCode, b, tc.status, tc.errType, tc.text)
			}
			tr.settled(t)
		})
	}
}

// GET /v1/models answers in the shape of the client's API, aliases
// included, and Anthropic's pages the way Anthropic's SDK walks them.
func TestModelListings(t *testing.T) {
	anthropicHeader := map[string]string{"anthropic-version": "2023-06-01", "x-api-key": "x"}
	ids := func(v map[string]any) []string {
		var out []string
		for _, d := range v["data"].([]any) {
			out = append(out, d.(map[string]any)["id"].(string))
		}
		return out
	}
	for _, tc := range []struct {
		name, path string
		header     map[string]string
		status     int
		check      func(t *testing.T, v map[string]any)
	}{{
		name: "openai list", path: "/v1/models", status: 200,
		check: func(t *testing.T, v map[string]any) {
			if v["object"] != "list" || !slices.Equal(ids(v), []string{"a/b:c", "other:7b", "auto:chat"}) {
				t.Errorf("got %v", v)
			}
		},
	}, {
		name: "anthropic list", path: "/v1/models", header: anthropicHeader, status: 200,
		check: func(t *testing.T, v map[string]any) {
			if !slices.Equal(ids(v), []string{"a/b:c", "other:7b", "auto:chat"}) || v["has_more"] != false || v["first_id"] != "a/b:c" || v["last_id"] != "auto:chat" {
				t.Fatalf("got %v", v)
			}
			alias := path(v, "data", 2).(map[string]any)
			if alias["type"] != "model" || alias["display_name"] != "auto:chat (now a/b:c)" ||
				alias["created_at"] != "2025-01-02T03:04:05Z" || alias["max_input_tokens"] != float64(2048) {
				t.Errorf("alias entry %v", alias)
			}
		},
	}, {
		name: "anthropic first page", path: "/v1/models?limit=2", header: anthropicHeader, status: 200,
		check: func(t *testing.T, v map[string]any) {
			if !slices.Equal(ids(v), []string{"a/b:c", "other:7b"}) || v["has_more"] != true || v["last_id"] != "other:7b" {
				t.Errorf("got %v", v)
			}
		},
	}, {
		name: "anthropic next page", path: "/v1/models?limit=2&after_id=other:7b", header: anthropicHeader, status: 200,
		check: func(t *testing.T, v map[string]any) {
			if !slices.Equal(ids(v), []string{"auto:chat"}) || v["has_more"] != false {
				t.Errorf("got %v", v)
			}
		},
	}, {
		name: "anthropic page before", path: "/v1/models?limit=1&before_id=auto:chat", header: anthropicHeader, status: 200,
		check: func(t *testing.T, v map[string]any) {
			if !slices.Equal(ids(v), []string{"other:7b"}) || v["has_more"] != true {
				t.Errorf("got %v", v)
			}
		},
	}, {
		name: "anthropic bad limit", path: "/v1/models?limit=0", header: anthropicHeader, status: 400,
		check: func(t *testing.T, v map[string]any) {
			if path(v, "error", "type") != "invalid_request_error" {
				t.Errorf("got %v", v)
			}
		},
	}, {
		name: "anthropic unknown cursor", path: "/v1/models?after_id=gone", header: anthropicHeader, status: 400,
		check: func(t *testing.T, v map[string]any) {
			if !strings.Contains(path(v, "error", "message").(string), "gone") {
				t.Errorf("got %v", v)
			}
		},
	}, {
		name: "anthropic one alias", path: "/v1/models/auto:chat", header: anthropicHeader, status: 200,
		check: func(t *testing.T, v map[string]any) {
			if v["id"] != "auto:chat" || v["type"] != "model" {
				t.Errorf("got %v", v)
			}
		},
	}, {
		name: "anthropic one model with a slash", path: "/v1/models/a/b:c", header: anthropicHeader, status: 200,
		check: func(t *testing.T, v map[string]any) {
			if v["id"] != "a/b:c" || v["created_at"] != "2025-01-02T03:04:05Z" {
				t.Errorf("got %v", v)
			}
		},
	}, {
		name: "anthropic unknown model", path: "/v1/models/nope", header: anthropicHeader, status: 404,
		check: func(t *testing.T, v map[string]any) {
			if v["type"] != "error" || path(v, "error", "type") != "not_found_error" {
				t.Errorf("got %v", v)
			}
		},
	}, {
		name: "openai one alias", path: "/v1/models/auto:chat", status: 200,
		check: func(t *testing.T, v map[string]any) {
			if v["id"] != "auto:chat" || v["object"] != "model" {
				t.Errorf("got %v", v)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTranslateRig(t, chatReply{})
			resp, b := tr.do(t, "GET", tc.path, "", tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			tc.check(t, decode(t, b))
		})
	}
	t.Run("ollama down", func(t *testing.T) {
		tr := newTranslateRig(t, chatReply{})
		tr.tagsErr = true
		resp, b := tr.do(t, "GET", "/v1/models", "", anthropicHeader)
		if v := decode(t, b); resp.StatusCode != 500 || path(v, "error", "message") != "tags broke" {
			t.Errorf("%d %s, want 500 with Ollama's message in Anthropic's shape", resp.StatusCode, b)
		}
	})
}
