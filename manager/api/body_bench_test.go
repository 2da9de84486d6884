package api_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	server "github.com/vramkeeper/vramkeeper/manager/api"
)

// BenchmarkLargeBody: what one 31 MiB body costs in allocations on its
// way through the proxy (B/op), per API.
func BenchmarkLargeBody(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.HasPrefix(r.URL.Path, "/api/chat") {
			io.WriteString(w, `{"model":"a/b:c","message":{"role":"assistant","content":"x"},"done":true}`)
			return
		}
		io.WriteString(w, `{"model":"a/b:c","response":"x","done":true}`)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	h := server.New(newHoldKeeper(), u, server.Options{}).Handler()
	text := strings.Repeat("a", 31<<20)
	for _, tc := range []struct{ name, path, body string }{
		{"native", "/api/generate", `{"model":"a/b:c","stream":false,"prompt":"` + text + `"}`},
		{"openai", "/v1/chat/completions", `{"model":"a/b:c","messages":[{"role":"user","content":"` + text + `"}]}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			body := []byte(tc.body)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req := httptest.NewRequest("POST", "http://127.0.0.1"+tc.path, bytes.NewReader(body))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
