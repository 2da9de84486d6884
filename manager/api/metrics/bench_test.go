package metrics_test

import (
	"testing"

	"github.com/vramkeeper/vramkeeper/internal/apibench"
)

// A scrape with 1,000 installed models; goal: under 50 ms.
func BenchmarkScrape(b *testing.B) { apibench.BenchmarkScrape(b) }
