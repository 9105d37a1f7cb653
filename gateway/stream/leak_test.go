package stream

import (
	"testing"

	"github.com/camgate/camgate/internal/leaktest"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// server, connection writer and pump must be joined by Close.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
