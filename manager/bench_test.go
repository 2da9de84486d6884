package manager_test

import (
	"testing"

	"github.com/vramkeeper/vramkeeper/internal/fakert"
)

// BenchmarkBestModelForTask: see fakert.BenchmarkBestModelForTask (shared
// with the bench command). What each event costs the owner is
// BenchmarkEvent (events_bench_test.go).
func BenchmarkBestModelForTask(b *testing.B) { fakert.BenchmarkBestModelForTask(b) }
