package manager_test

import (
	"testing"

	"github.com/vramkeeper/vramkeeper/internal/fakert"
)

// BenchmarkBestModelForTask: see fakert.BenchmarkBestModelForTask (shared
// with the bench command).
func BenchmarkBestModelForTask(b *testing.B) { fakert.BenchmarkBestModelForTask(b) }
