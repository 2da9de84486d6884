package manager_test

import (
	"testing"

	"go.uber.org/goleak"
)

// No test leaves a goroutine behind: a stopped manager has stopped all of
// its own.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
