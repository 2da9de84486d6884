package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/apibench"
)

// agentRounds: the benchmarks run in turn this many times each and their
// medians are compared, so that both sides of a difference meet the same
// load on a shared machine.
const agentRounds = 3

// agentsSection times the faces for agents and operators: an MCP
// best_model call against POST /keeper/v1/best for a loaded model, and a
// Prometheus scrape with 1,000 installed models (internal/apibench, the
// same code as `go test -bench`).
func agentsSection() (section, error) {
	s := section{Title: "MCP and metrics", Header: []string{"measurement", "result", "goal", "met"}}
	benches := []struct {
		name string
		f    func(*testing.B)
	}{
		{"api", apibench.BenchmarkKeeperBest},
		{"mcp", apibench.BenchmarkMCPBestRaw},
		{"sdk", apibench.BenchmarkMCPBest},
		{"scrape", apibench.BenchmarkScrape},
	}
	times := map[string][]time.Duration{}
	last := map[string]testing.BenchmarkResult{}
	var loads []string
	for range agentRounds {
		loads = append(loads, loadAvg())
		for _, bm := range benches {
			r := testing.Benchmark(bm.f)
			if r.N == 0 {
				return s, fmt.Errorf("benchmark %s failed (see its log above)", bm.name)
			}
			times[bm.name] = append(times[bm.name], time.Duration(r.NsPerOp()))
			last[bm.name] = r
		}
	}
	med := func(name string) time.Duration { return median(times[name]) }
	perOp := func(name string) string {
		return fmt.Sprintf("%s/op, %d allocs, %.0f kB/op", fmtDur(med(name)), last[name].AllocsPerOp(), float64(last[name].AllocedBytesPerOp())/1e3)
	}
	a, m, sdk, sc := med("api"), med("mcp"), med("sdk"), med("scrape")
	s.Rows = append(s.Rows,
		[]string{"POST /keeper/v1/best, model loaded, 1,000 installed", perOp("api"), "", ""},
		[]string{"MCP tools/call best_model, the same: one JSON-RPC POST to /mcp", perOp("mcp"), "", ""},
		[]string{"MCP − POST /keeper/v1/best (medians of the same run)",
			fmt.Sprintf("%s more (×%.1f)", fmtDur(m-a), float64(m)/float64(a)), "< 2 ms more", yesNo(m-a < 2*time.Millisecond)},
		[]string{"the MCP call through the official Go SDK's client (its own work included, in the same process)",
			fmt.Sprintf("%s (%s more than POST /keeper/v1/best)", perOp("sdk"), fmtDur(sdk-a)), "", ""},
		[]string{"GET /metrics with 1,000 installed models",
			fmt.Sprintf("%s/scrape, %.0f kB, %d allocs", fmtDur(sc), last["scrape"].Extra["bytes/scrape"]/1e3, last["scrape"].AllocsPerOp()), "< 50 ms", yesNo(sc < 50*time.Millisecond)},
	)
	s.Notes = append(s.Notes,
		fmt.Sprintf("Every call runs against the same in-process manager over internal/fakert (1,000 seed-shaped models, the best for chat loaded, so no load is timed) behind the API server on loopback HTTP; %d rounds of testing.Benchmark each, in turn, medians; the machine is shared, its 1-minute load average at the start of each round: %s (`go test -bench . ./manager/api/mcp/ ./manager/api/metrics/` runs the same code).",
			agentRounds, strings.Join(loads, ", ")),
		"POST /keeper/v1/best goes through the management API's client (client.Client). The MCP row posts the JSON-RPC request a client sends (stateless server: no session to set up first) and reads the answer, one Server-Sent Event, whole: VRAM Keeper's side of a call. The SDK makes a session for the request, decodes the message several times with its own JSON decoder (32 kB of buffer each: most of the bytes), checks the arguments against the tool's input schema and the answer against its output schema; the tool itself is the same BestModelForTask call the management API makes.",
		"The scrape reads the snapshot the manager published last (no call into its owner goroutine) and writes two series per model, the load counters of installed models, the histograms and the Go and process collectors.",
	)
	return s, nil
}
