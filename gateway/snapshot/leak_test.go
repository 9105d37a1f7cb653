package snapshot

import (
	"testing"

	"github.com/camgate/camgate/internal/leaktest"
)

// TestMain fails the package when a test leaves a goroutine (or an ffmpeg
// waiter) behind.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
