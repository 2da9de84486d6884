package api_test

// Helpers for the tests of the translated APIs (responses_test.go,
// anthropic_test.go): a manager fake that counts holds, a fake Ollama that
// records what the proxy sent, and an SSE reader.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/score"
)

// holdKeeper is fakeKeeper with holds counted under a lock, as requests
// run on the server's goroutines.
type holdKeeper struct {
	*fakeKeeper
	mu       sync.Mutex
	acquired map[string]int
	released map[string]int
}

func newHoldKeeper() *holdKeeper {
	return &holdKeeper{
		fakeKeeper: &fakeKeeper{models: map[string]bool{"a/b:c": true, "other:7b": false}},
		acquired:   map[string]int{}, released: map[string]int{},
	}
}

func (k *holdKeeper) Acquire(ctx context.Context, name, reason string) (func(), manager.LoadResult, error) {
	if err := k.known(name); err != nil {
		return func() {}, manager.LoadResult{}, err
	}
	k.mu.Lock()
	k.acquired[name]++
	k.mu.Unlock()
	return func() {
		k.mu.Lock()
		k.released[name]++
		k.mu.Unlock()
	}, manager.LoadResult{Model: name}, nil
}

// Snapshot is fakeKeeper's, sorted by name as the manager's is.
func (k *holdKeeper) Snapshot() manager.Snapshot {
	s := k.fakeKeeper.Snapshot()
	slices.SortFunc(s.Models, func(a, b manager.ModelView) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// Rank points auto:chat at a/b:c; no other task has a model.
func (k *holdKeeper) Rank(task, role string) ([]score.Ranked, error) {
	if task == "chat" {
		return []score.Ranked{{Candidate: score.Candidate{Name: "a/b:c"}}}, nil
	}
	return nil, nil
}

// holds returns how many times each model was acquired and released.
func (k *holdKeeper) holds() (acquired, released map[string]int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return clone(k.acquired), clone(k.released)
}

func clone(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// chatReply is how the fake Ollama answers /api/chat.
type chatReply struct {
	status int      // not 200: {"error": fail} with this status
	fail   string   // with status 200: an in-band error after the chunks
	chunks []string // message contents, one chunk each; the last one is done
	block  bool     // after the chunks, wait for the client to leave
}

// translateRig is VRAM Keeper's server over a holdKeeper and a fake Ollama.
type translateRig struct {
	k       *holdKeeper
	url     string
	client  *http.Client
	mu      sync.Mutex
	sent    []map[string]any // the /api/chat bodies Ollama received
	served  chan struct{}    // one value each time a proxy handler returned
	reply   chatReply
	tagsErr bool // /api/tags answers 500
}

func newTranslateRig(t testing.TB, reply chatReply) *translateRig {
	t.Helper()
	tr := &translateRig{k: newHoldKeeper(), served: make(chan struct{}, 16), reply: reply}
	up := httptest.NewServer(http.HandlerFunc(tr.ollama))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	h := server.New(tr.k, u, server.Options{}).Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		tr.served <- struct{}{}
	}))
	t.Cleanup(hs.Close)
	tr.url, tr.client = hs.URL, hs.Client()
	return tr
}

// ollama is the fake upstream: /api/chat as Ollama streams it, /api/tags
// with two models.
func (tr *translateRig) ollama(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/tags":
		if tr.tagsErr {
			http.Error(w, `{"error":"tags broke"}`, http.StatusInternalServerError)
			return
		}
		io.WriteString(w, `{"models":[{"name":"a/b:c","model":"a/b:c","modified_at":"2025-01-02T03:04:05Z"},`+
			`{"name":"other:7b","model":"other:7b","modified_at":"2024-06-01T00:00:00Z"}]}`)
		return
	case "/api/chat":
	default:
		http.NotFound(w, r)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, `{"error":"fake: bad body"}`, http.StatusBadRequest)
		return
	}
	tr.mu.Lock()
	tr.sent = append(tr.sent, body)
	tr.mu.Unlock()
	rp := tr.reply
	if rp.status != 0 {
		w.WriteHeader(rp.status)
		fmt.Fprintf(w, `{"error":%q}`, rp.fail)
		return
	}
	model, _ := body["model"].(string)
	msg := func(content string, done bool) map[string]any {
		m := map[string]any{
			"model": model, "created_at": time.Now().UTC(), "done": done,
			"message": map[string]any{"role": "assistant", "content": content},
		}
		if done {
			m["done_reason"], m["prompt_eval_count"], m["eval_count"] = "stop", 5, len(rp.chunks)
		}
		return m
	}
	enc := json.NewEncoder(w)
	if stream, _ := body["stream"].(bool); !stream {
		if rp.fail != "" {
			enc.Encode(map[string]string{"error": rp.fail})
			return
		}
		enc.Encode(msg(strings.Join(rp.chunks, ""), true))
		return
	}
	for i, c := range rp.chunks {
		enc.Encode(msg(c, i == len(rp.chunks)-1 && rp.fail == "" && !rp.block))
		w.(http.Flusher).Flush()
	}
	if rp.fail != "" {
		enc.Encode(map[string]string{"error": rp.fail})
	}
	if rp.block {
		<-r.Context().Done()
	}
}

// lastSent is the last /api/chat body Ollama received.
func (tr *translateRig) lastSent(t testing.TB) map[string]any {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.sent) == 0 {
		t.Fatal("nothing reached ollama's /api/chat")
	}
	return tr.sent[len(tr.sent)-1]
}

// do sends body to path with headers and returns the response, its body
// read to the end.
func (tr *translateRig) do(t testing.TB, method, path, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, tr.url+path, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := tr.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// settled waits until the proxy handler returned, so that its deferred
// release has run, and checks that every hold taken was released once.
func (tr *translateRig) settled(t testing.TB) map[string]int {
	t.Helper()
	select {
	case <-tr.served:
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy handler did not return within 10 s")
	}
	acq, rel := tr.k.holds()
	for m, n := range acq {
		if rel[m] != n {
			t.Errorf("%s acquired %d times, released %d times", m, n, rel[m])
		}
	}
	return acq
}

// event is one Server-Sent Event.
type event struct {
	name string
	data map[string]any
}

// readEvents parses a Server-Sent Event stream; a data line that is not
// JSON ([DONE]) gets a nil data.
func readEvents(t testing.TB, b []byte) []event {
	t.Helper()
	var out []event
	var cur event
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" || cur.data != nil {
				out = append(out, cur)
			}
			cur = event{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			d := strings.TrimPrefix(line, "data: ")
			if err := json.Unmarshal([]byte(d), &cur.data); err != nil && d != "[DONE]" {
				t.Fatalf("event data is not JSON: %q", d)
			}
		default:
			t.Fatalf("not an SSE line: %q", line)
		}
	}
	return out
}

func names(evs []event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.name)
	}
	return out
}

// path digs a value out of decoded JSON: path(v, "error", "type").
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, b)
	}
	return v
}
