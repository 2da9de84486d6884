package mcp_test

import (
	"testing"

	"github.com/vramkeeper/vramkeeper/internal/apibench"
)

// The MCP tool against the management API for the same call (a loaded
// model); goal: under 2 ms more. Run both: go test -bench Best ./manager/api/mcp/
func BenchmarkBestModelMCP(b *testing.B)       { apibench.BenchmarkMCPBest(b) }
func BenchmarkBestModelMCPRaw(b *testing.B)    { apibench.BenchmarkMCPBestRaw(b) }
func BenchmarkBestModelKeeperAPI(b *testing.B) { apibench.BenchmarkKeeperBest(b) }
