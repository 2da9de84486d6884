package faultproxy

import (
	"encoding/json"
	"testing"
)

// FuzzClassify: any body on any path classifies without panicking, to a
// known intent, naming the model the body's "model" field names.
func FuzzClassify(f *testing.F) {
	for _, s := range []struct{ path, body string }{
		{"/api/generate", `{"model":"m","keep_alive":-1,"options":{"num_ctx":2048}}`},
		{"/api/generate", `{"model":"m","keep_alive":0}`},
		{"/api/chat", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`},
		{"/api/embed", `{"model":"e","input":["a","b"]}`},
		{"/api/show", `{"name":"hf.co/u/m:Q4_K_M"}`},
		{"/api/ps", ``},
	} {
		f.Add(s.path, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, path string, body []byte) {
		name, in := classify(path, body)
		if in < Load || in > Other {
			t.Fatalf("classify(%q, %q): intent %d", path, body, in)
		}
		var p struct {
			Model *string `json:"model"`
		}
		if json.Unmarshal(body, &p) == nil && p.Model != nil && *p.Model != "" && name != *p.Model {
			t.Fatalf("classify(%q, %q) named %q, the body names %q", path, body, name, *p.Model)
		}
	})
}
