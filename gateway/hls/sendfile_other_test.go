//go:build !linux

package hls

import "testing"

// sendfileHandlers: the memfd alternative is Linux-only.
func sendfileHandlers(*testing.B, *segmentFixture) []segmentHandler { return nil }
