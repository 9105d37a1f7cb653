// Package poll is the tests' one way to wait for something that happens on
// another goroutine or in another process: check a condition until it holds
// or a deadline passes, never a bare time.Sleep.
package poll

import (
	"testing"
	"time"
)

// Timeout is how long Until waits; generous because the suite runs under
// -race on small machines.
const Timeout = 15 * time.Second

// Until fails tb when cond has not become true within Timeout.
func Until(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	Within(tb, Timeout, what, cond)
}

// Within fails tb when cond has not become true within d.
func Within(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	wait := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(wait)
		wait = min(wait*2, 20*time.Millisecond)
	}
}
