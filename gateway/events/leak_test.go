package events

import (
	"testing"

	"github.com/camgate/camgate/internal/leaktest"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// stream and the tail must end with Close.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
