//go:build !linux

package webrtc

import "net"

// segmentCmsgSpace: no UDP GSO outside Linux.
var segmentCmsgSpace = 0

func gsoSupported(*net.UDPConn) bool { return false }

func putSegmentCmsg([]byte, int) {}
