package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

var testHeld = held{model: "qwen2.5-coder:7b", numCtx: 4096}

// ollamaView is what Ollama reads from a forwarded body: the request
// struct of the endpoint, and the runner options it would load with.
type ollamaView struct {
	req    any // *api.GenerateRequest etc., with model, keep_alive, options zeroed
	model  string
	keep   *api.Duration
	runner api.Runner
	optErr error
	opts   map[string]any
}

// decodeView reads body into an R as Ollama does and takes out the
// fields the manager sets.
func decodeView[R any](body []byte, fields func(*R) (*string, **api.Duration, *map[string]any)) (ollamaView, error) {
	var r R
	err := decodeFirst(body, &r)
	m, k, o := fields(&r)
	v := ollamaView{model: *m, keep: *k, opts: *o}
	*m, *k, *o = "", nil, nil
	v.req = &r
	return v, err
}

func readAsOllama(t testing.TB, path string, body []byte) (ollamaView, error) {
	var v ollamaView
	var err error
	switch path {
	case "/api/generate":
		v, err = decodeView(body, func(r *api.GenerateRequest) (*string, **api.Duration, *map[string]any) {
			return &r.Model, &r.KeepAlive, &r.Options
		})
	case "/api/chat":
		v, err = decodeView(body, func(r *api.ChatRequest) (*string, **api.Duration, *map[string]any) {
			return &r.Model, &r.KeepAlive, &r.Options
		})
	case "/api/embed":
		v, err = decodeView(body, func(r *api.EmbedRequest) (*string, **api.Duration, *map[string]any) {
			return &r.Model, &r.KeepAlive, &r.Options
		})
	case "/api/embeddings":
		v, err = decodeView(body, func(r *api.EmbeddingRequest) (*string, **api.Duration, *map[string]any) {
			return &r.Model, &r.KeepAlive, &r.Options
		})
	default:
		t.Fatalf("no such endpoint %s", path)
	}
	o := api.DefaultOptions()
	v.optErr = o.FromMap(v.opts)
	v.runner = o.Runner
	return v, err
}

// checkPinned asserts what the budget rests on: Ollama reads the held
// model, keeps it loaded forever, and loads it with the manager's options,
// while every other field reads as the client sent it.
func checkPinned(t testing.TB, path string, in, out []byte) {
	t.Helper()
	got, err := readAsOllama(t, path, out)
	if err != nil {
		t.Fatalf("forwarded body does not decode: %v\n in: %s\nout: %s", err, in, out)
	}
	if got.model != testHeld.model {
		t.Fatalf("Ollama reads model %q, want %q\n in: %s\nout: %s", got.model, testHeld.model, in, out)
	}
	if got.keep == nil || got.keep.Duration != math.MaxInt64 { // how api.Duration reads "forever"
		t.Fatalf("Ollama reads keep_alive %v, want forever\n in: %s\nout: %s", got.keep, in, out)
	}
	want := api.DefaultOptions().Runner
	want.NumCtx = testHeld.numCtx
	if got.optErr != nil {
		// Ollama refuses the request (a bad non-load option): no load at
		// all. The error must not be about a load option we set.
		for _, k := range runnerOptions {
			if strings.Contains(got.optErr.Error(), `"`+k+`"`) {
				t.Fatalf("load option %s refused: %v\nout: %s", k, got.optErr, out)
			}
		}
	} else if !reflect.DeepEqual(got.runner, want) {
		t.Fatalf("Ollama loads with %+v, want %+v\n in: %s\nout: %s", got.runner, want, in, out)
	}
	orig, err := readAsOllama(t, path, in)
	if err != nil {
		t.Fatalf("original does not decode: %v", err)
	}
	if !reflect.DeepEqual(got.req, orig.req) {
		t.Fatalf("other fields changed:\n in: %+v\nout: %+v", orig.req, got.req)
	}
	for k, v := range orig.opts {
		if isRunnerOption(k) {
			continue
		}
		if w, ok := got.opts[k]; !ok || !reflect.DeepEqual(w, v) {
			t.Fatalf("option %q = %v sent, %v forwarded", k, v, w)
		}
	}
}

func TestPinHoldsTheLine(t *testing.T) {
	cases := []struct {
		name, path, body string
		keep             []string // substrings the forwarded body must keep as sent
	}{
		{"plain options", "/api/generate", `{"model":"m","prompt":"hi","options":{"num_ctx":131072,"temperature":0.2}}`, nil},
		{"options in another case", "/api/generate", `{"model":"m","prompt":"hi","Options":{"num_ctx":131072,"num_gpu":0}}`, nil},
		{"duplicate options merge", "/api/chat", `{"model":"m","messages":[],"options":{"temperature":0.1},"Options":{"num_ctx":1},"OPTIONS":{"num_batch":7,"main_gpu":3}}`, nil},
		{"key escaped", "/api/generate", `{"model":"m","\u006fptions":{"num_ctx":32768},"prompt":"x"}`, nil},
		{"Kelvin sign folds to k", "/api/generate", `{"model":"m","prompt":"x","` + "\u212A" + `eep_alive":"5m"}`, nil},
		{"long s folds to s", "/api/chat", `{"model":"m","messages":[{"role":"user","content":"x"}],"option` + "\u017F" + `":{"num_ctx":99999}}`, nil},
		{"model twice, any case", "/api/generate", `{"Model":"other:7b","model":"m","MODEL":"third"}`, nil},
		{"option keys in any case dropped", "/api/embed", `{"model":"m","input":"x","options":{"NUM_CTX":9,"Use_MMap":false,"num_thread":64}}`, nil},
		{"unknown fields pass as sent", "/api/generate", `{"model":"m","future_field":{"a":[1,2.50]},"prompt":"x","x":1,"x":2}`,
			[]string{`"future_field":{"a":[1,2.50]}`, `"x":1,"x":2`}},
		{"trailing data ignored as Ollama does", "/api/embeddings", `{"model":"m","prompt":"x"} trailing`, nil},
		{"null options", "/api/chat", `{"model":"m","options":null,"messages":[{"role":"user","content":"x"}]}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parseNative(tc.path, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			body, err := req.pin(testHeld)
			out := bytes.Join(body, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkPinned(t, tc.path, []byte(tc.body), out)
			for _, k := range tc.keep {
				if !bytes.Contains(out, []byte(k)) {
					t.Errorf("forwarded body lost %s: %s", k, out)
				}
			}
		})
	}
}

func TestParseNativeRefuses(t *testing.T) {
	cases := []struct{ name, path, body, want string }{
		{"empty", "/api/generate", ``, "missing request body"},
		{"not an object", "/api/chat", `[1]`, "malformed"},
		{"options not an object", "/api/generate", `{"model":"m","options":5}`, "malformed"},
		{"model not a string", "/api/embed", `{"model":5}`, "malformed"},
		{"no model", "/api/generate", `{"prompt":"x"}`, "model is required"},
		{"null", "/api/generate", `null`, "model is required"},
		{"cut", "/api/generate", `{"model":"m","prompt":"x`, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseNative(tc.path, []byte(tc.body))
			var bad wire.BadRequest
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &bad) {
				t.Fatalf("want a bad request containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestUnloadIdiom(t *testing.T) {
	cases := []struct {
		path, body string
		unload     bool
	}{
		{"/api/generate", `{"model":"m","keep_alive":0}`, true},
		{"/api/generate", `{"model":"m","Keep_Alive":"0s","prompt":""}`, true},
		{"/api/generate", `{"model":"m","keep_alive":0,"prompt":"hi"}`, false},
		{"/api/generate", `{"model":"m"}`, false},
		{"/api/chat", `{"model":"m","keep_alive":0,"messages":[]}`, true},
		{"/api/chat", `{"model":"m","keep_alive":0,"messages":[{"role":"user","content":"x"}]}`, false},
		{"/api/embed", `{"model":"m","keep_alive":0}`, false}, // Ollama has no unload idiom there
	}
	for _, tc := range cases {
		req, err := parseNative(tc.path, []byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if req.unload != tc.unload {
			t.Errorf("%s %s: unload = %v, want %v", tc.path, tc.body, req.unload, tc.unload)
		}
	}
}

func TestRunnerOptionsFromStruct(t *testing.T) {
	// The names the budget depends on today; the list is read from
	// api.Runner, so a newer module adds to it by itself.
	for _, k := range []string{"num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread"} {
		if !isRunnerOption(k) {
			t.Errorf("%s is not treated as a load option", k)
		}
	}
	if isRunnerOption("temperature") {
		t.Error("temperature is not a load option")
	}
}

var nativePaths = []string{"/api/generate", "/api/chat", "/api/embed", "/api/embeddings"}

// FuzzPin: whatever JSON a client sends to a native endpoint, the body
// forwarded to Ollama, read as Ollama reads it, carries the manager's
// model, keep_alive and load options, and every other field as sent.
func FuzzPin(f *testing.F) {
	seeds := []string{
		`{"model":"m","prompt":"hi","options":{"num_ctx":131072}}`,
		`{"model":"m","Options":{"num_ctx":131072,"num_gpu":0}}`,
		`{"model":"m","options":{"temperature":0.1},"Options":{"num_ctx":1},"OPTIONS":{"num_batch":7}}`,
		`{"model":"m","` + "\u212A" + `eep_alive":0,"option` + "\u017F" + `":{"use_mmap":false}}`,
		`{"model":"m","messages":[{"role":"user","content":"x","images":["aGk="]}],"tools":[],"format":"json","think":true}`,
		`{"model":"m","input":["a","b"],"truncate":true,"dimensions":8,"options":{"main_gpu":1}}`,
		`{"model":"m","future":{"nested":[1,{"options":{"num_ctx":1}}]},"keep_alive":"10m"}`,
		`{"model":"m"} {"options":{"num_ctx":1}}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, p uint8, body []byte) {
		path := nativePaths[int(p)%len(nativePaths)]
		req, err := parseNative(path, body)
		if err != nil {
			return // refused: nothing is forwarded
		}
		pieces, err := req.pin(testHeld)
		if err != nil {
			t.Fatalf("pin: %v", err)
		}
		out := bytes.Join(pieces, nil)
		if !json.Valid(out) {
			t.Fatalf("forwarded body is not JSON: %s", out)
		}
		checkPinned(t, path, body, out)
	})
}

// membersByDecoder lists b's top-level members with encoding/json's own
// tokenizer: the reference topMembers must agree with.
func membersByDecoder(b []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, member{key: tok.(string), raw: raw})
	}
	return out, nil
}

// FuzzTopMembers: for any body, the first JSON value is the one
// encoding/json's decoder reads (as Ollama does), and the members split
// from it without copying are encoding/json's, key by key and byte for
// byte.
func FuzzTopMembers(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","prompt":"hi"}`, ` { "a" : [1, {"b":"}"}] , "a":"x\"y" ,"\u006b": -1.5e3 } `,
		`{"model":"m"} trailing`, `null`, `{}`, `{"a":{"b":{"c":[[],{}]}},"d":true,"e":null,"f":"\\"}`,
		`[1]`, `"s"`, ``, ` `, `{"a":1`, `{"a":"` + "\u212A" + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		first, err := firstValue(b)
		var raw json.RawMessage
		derr := json.NewDecoder(bytes.NewReader(b)).Decode(&raw)
		if (err == nil) != (derr == nil) || err == nil && !bytes.Equal(bytes.TrimSpace(first), raw) {
			t.Fatalf("first value %q (%v), the decoder reads %q (%v)", first, err, raw, derr)
		}
		if err != nil {
			return
		}
		want, werr := membersByDecoder(first)
		got, gerr := topMembers(first)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: members %v, the decoder's %v", first, gerr, werr)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, the decoder reads %d", first, len(got), len(want))
		}
		for i := range got {
			if got[i].key != want[i].key || !bytes.Equal(got[i].raw, want[i].raw) {
				t.Fatalf("%q: member %d is %q=%s, the decoder reads %q=%s", first, i, got[i].key, got[i].raw, want[i].key, want[i].raw)
			}
		}
	})
}
