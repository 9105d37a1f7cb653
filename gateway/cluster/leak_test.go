package cluster

import (
	"testing"

	"github.com/camgate/camgate/internal/leaktest"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// node's loop must be joined by Close.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
