package api_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// /v1/responses through the budget: the alias resolved, the model held
// until the answer ends, the load options forced, the answer in the
// Responses API's shape.
func TestResponses(t *testing.T) {
	hello := chatReply{chunks: []string{"Hel", "lo"}}
	for _, tc := range []struct {
		name   string
		reply  chatReply
		body   string
		header map[string]string
		status int
		check  func(t *testing.T, b []byte)
	}{{
		name: "plain", reply: hello, status: 200,
		body: `{"model":"auto:chat","input":"hi","max_output_tokens":8,"temperature":0}`,
		check: func(t *testing.T, b []byte) {
			v := decode(t, b)
			if v["object"] != "response" || v["status"] != "completed" || v["model"] != "a/b:c" {
				t.Errorf("object %v status %v model %v, want a completed response from a/b:c", v["object"], v["status"], v["model"])
			}
			if got := path(v, "output", 0, "content", 0, "text"); got != "Hello" {
				t.Errorf("text %v, want Hello", got)
			}
			if path(v, "usage", "output_tokens") != float64(2) {
				t.Errorf("usage %v", v["usage"])
			}
		},
	}, {
		name: "streamed", reply: hello, status: 200,
		body: `{"model":"auto:chat","input":[{"role":"user","content":"hi"}],"stream":true}`,
		check: func(t *testing.T, b []byte) {
			evs := readEvents(t, b)
			var text strings.Builder
			for i, e := range evs {
				if e.data["type"] != e.name || e.data["sequence_number"] != float64(i) {
					t.Errorf("event %d %q: type %v, sequence %v", i, e.name, e.data["type"], e.data["sequence_number"])
				}
				if e.name == "response.output_text.delta" {
					text.WriteString(e.data["delta"].(string))
				}
			}
			n := names(evs)
			if len(n) < 3 || n[0] != "response.created" || n[len(n)-1] != "response.completed" || text.String() != "Hello" {
				t.Fatalf("events %v, text %q", n, text.String())
			}
			if m := path(evs[len(evs)-1].data, "response", "model"); m != "a/b:c" {
				t.Errorf("completed response names %v, want a/b:c", m)
			}
		},
	}, {
		name: "zstd body", reply: hello, status: 200,
		body: string(zstdCompress(t, `{"model":"a/b:c","input":"hi"}`)), header: map[string]string{"Content-Encoding": "zstd"},
		check: func(t *testing.T, b []byte) {
			if got := path(decode(t, b), "output", 0, "content", 0, "text"); got != "Hello" {
				t.Errorf("text %v, want Hello", got)
			}
		},
	}, {
		name: "error inside the stream", reply: chatReply{chunks: []string{"Hel"}, fail: "runner crashed"}, status: 200,
		body: `{"model":"a/b:c","input":"hi","stream":true}`,
		check: func(t *testing.T, b []byte) {
			evs := readEvents(t, b)
			last := evs[len(evs)-1]
			if last.name != "error" || last.data["message"] != "runner crashed" || last.data["sequence_number"] != float64(len(evs)-1) {
				t.Errorf("last event %+v, want an error event saying runner crashed", last)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTranslateRig(t, tc.reply)
			resp, b := tr.do(t, "POST", "/v1/responses", tc.body, tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			tc.check(t, b)
			sent := tr.lastSent(t)
			if sent["model"] != "a/b:c" || sent["keep_alive"] != float64(-1) || path(sent, "options", "num_ctx") != float64(2048) {
				t.Errorf("ollama got model %v keep_alive %v options %v; want a/b:c, -1, num_ctx 2048", sent["model"], sent["keep_alive"], sent["options"])
			}
			if acq := tr.settled(t); acq["a/b:c"] != 1 {
				t.Errorf("holds %v, want a/b:c once", acq)
			}
		})
	}
}

// Refusals come in OpenAI's error shape, and nothing is held.
func TestResponsesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		header     map[string]string
		reply      chatReply
		status     int
		contains   string
	}{
		{"malformed JSON", `{"model":`, nil, chatReply{}, 400, "malformed JSON"},
		{"no model", `{"input":"hi"}`, nil, chatReply{}, 400, "model is required"},
		{"bad input item", `{"model":"a/b:c","input":[{"type":"function_call","arguments":"{"}]}`, nil, chatReply{}, 400, "function call arguments"},
		{"unknown model", `{"model":"nope:1b","input":"hi"}`, nil, chatReply{}, 404, "nope:1b"},
		{"unknown task", `{"model":"auto:juggling","input":"hi"}`, nil, chatReply{}, 400, "juggling"},
		{"larger than the budget", `{"model":"auto:huge","input":"hi"}`, nil, chatReply{}, 507, "no model fits"},
		{"broken zstd", `not zstd`, map[string]string{"Content-Encoding": "zstd"}, chatReply{}, 400, "request body"},
		{"ollama refuses", `{"model":"a/b:c","input":"hi"}`, nil, chatReply{status: 400, fail: `"a/b:c" does not support thinking`}, 400, "does not support thinking"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTranslateRig(t, tc.reply)
			resp, b := tr.do(t, "POST", "/v1/responses", tc.body, tc.header)
			v := decode(t, b)
			msg, _ := path(v, "error", "message").(string)
			if resp.StatusCode != tc.status || !strings.Contains(msg, tc.contains) || path(v, "error", "type") == nil {
				t.Fatalf("%d %s, want %d with an OpenAI error containing %q", resp.StatusCode, b, tc.status, tc.contains)
			}
			tr.settled(t)
		})
	}
}

func zstdCompress(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	enc.Write([]byte(s))
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A client that leaves in the middle of a stream ends the request to
// Ollama and the hold, once.
func TestStreamClientLeaves(t *testing.T) {
	for _, tc := range []struct {
		path, body, firstEvent string
	}{
		{"/v1/responses", `{"model":"auto:chat","input":"hi","stream":true}`, "event: response.created"},
		{"/v1/messages", `{"model":"auto:chat","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, "event: message_start"},
		{"/v1/chat/completions", `{"model":"auto:chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "data: "},
	} {
		t.Run(tc.path, func(t *testing.T) {
			tr := newTranslateRig(t, chatReply{chunks: []string{"Hel"}, block: true})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", tr.url+tc.path, strings.NewReader(tc.body))
			resp, err := tr.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			line, err := readLine(resp)
			if err != nil || !strings.HasPrefix(line, tc.firstEvent) {
				t.Fatalf("first line %q (%v), want %q", line, err, tc.firstEvent)
			}
			acq, rel := tr.k.holds()
			if acq["a/b:c"] != 1 || rel["a/b:c"] != 0 {
				t.Fatalf("while streaming: acquired %v released %v, want one hold still held", acq, rel)
			}
			cancel()
			resp.Body.Close()
			if acq := tr.settled(t); acq["a/b:c"] != 1 {
				t.Errorf("holds %v, want a/b:c once", acq)
			}
		})
	}
}

func readLine(resp *http.Response) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := resp.Body.Read(b); err != nil {
			return string(line), err
		}
		if b[0] == '\n' {
			return string(line), nil
		}
		line = append(line, b[0])
	}
}
