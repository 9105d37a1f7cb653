package creds

import (
	"testing"

	"github.com/camgate/camgate/internal/leaktest"
)

// TestMain fails the package when a test leaves a goroutine behind.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
