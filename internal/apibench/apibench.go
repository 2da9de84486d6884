// Package apibench holds the benchmarks of the API's faces for agents and
// operators: an MCP best_model call for a loaded model against POST
// /keeper/v1/best, and a Prometheus scrape with 1,000 installed models.
// `go test -bench` (manager/api/mcp, manager/api/metrics) and the bench
// command (testing.Benchmark) run the same code.
package apibench

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vramkeeper/vramkeeper/internal/fakert"
	"github.com/vramkeeper/vramkeeper/internal/mgrtest"
	"github.com/vramkeeper/vramkeeper/manager"
	server "github.com/vramkeeper/vramkeeper/manager/api"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
)

// Models is how many models the benchmarks install.
const Models = 1000

// Task is what the best-model benchmarks ask for.
const Task = "chat"

// start runs a manager over the in-memory Ollama with Models models, the
// best for Task loaded, and the API server in front of it on loopback.
func start(b *testing.B) (*manager.Manager, string) {
	b.Helper()
	rt := fakert.New()
	fakert.Synthetic(rt, Models)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := mgrtest.Start(b, manager.Options{
		Runtime: rt, GPU: &fakert.GPU{RT: rt, Total: 8 << 30},
		// Timers far away: the benchmarks measure calls, not polls.
		PollEvery: time.Hour, RefreshEvery: time.Hour, Logger: quiet,
	})
	ctx := context.Background()
	if err := m.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	if n := len(m.Snapshot().Models); n != Models {
		b.Fatalf("discovered %d models", n)
	}
	if _, err := m.BestModelForTask(ctx, Task, ""); err != nil {
		b.Fatal(err)
	}
	up, _ := url.Parse("http://127.0.0.1:9") // the proxy is not used
	hs := httptest.NewServer(server.New(m, up, server.Options{Log: quiet}).Handler())
	b.Cleanup(hs.Close)
	return m, hs.URL
}

// BenchmarkKeeperBest: POST /keeper/v1/best for a model already loaded,
// through the management API's own client, over loopback HTTP.
func BenchmarkKeeperBest(b *testing.B) {
	_, base := start(b)
	ctx := context.Background()
	c, err := client.Dial(ctx, base, "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ch, err := c.BestModelForTask(ctx, Task, "")
		if err != nil || !ch.Already {
			b.Fatalf("%+v %v", ch, err)
		}
	}
}

// BenchmarkMCPBest: the MCP tool best_model for the same loaded model,
// through the official Go SDK's client over Streamable HTTP at /mcp (one
// session; each call is one POST, answered as a stateless server does).
func BenchmarkMCPBest(b *testing.B) {
	_, base := start(b)
	ctx := context.Background()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).
		Connect(ctx, &sdk.StreamableClientTransport{Endpoint: base + "/mcp"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	params := &sdk.CallToolParams{Name: "best_model", Arguments: map[string]any{"task": Task}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := cs.CallTool(ctx, params)
		if err != nil || res.IsError {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

// BenchmarkMCPBestRaw: the same tools/call as one JSON-RPC POST to /mcp
// with the headers a client sends, the answer (one Server-Sent Event) read
// whole: the server's side of an MCP call, without a client library's.
func BenchmarkMCPBestRaw(b *testing.B) {
	_, base := start(b)
	hc := &http.Client{}
	b.Cleanup(hc.CloseIdleConnections)
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"best_model","arguments":{"task":"` + Task + `"}}}`
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2025-06-18")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(answer, []byte(`"structuredContent"`)) || bytes.Contains(answer, []byte(`"isError":true`)) {
			b.Fatalf("%d %v: %s", resp.StatusCode, err, answer)
		}
	}
}

// BenchmarkScrape: GET /metrics with Models installed models (two series
// each), read whole, as Prometheus scrapes it.
func BenchmarkScrape(b *testing.B) {
	_, base := start(b)
	hc := &http.Client{}
	b.Cleanup(hc.CloseIdleConnections)
	var size int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := hc.Get(base + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		size, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("%d %v", resp.StatusCode, err)
		}
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
