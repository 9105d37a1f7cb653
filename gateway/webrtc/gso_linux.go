package webrtc

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// segmentCmsgSpace is the room of one UDP_SEGMENT control message.
var segmentCmsgSpace = unix.CmsgSpace(2)

// gsoSupported reports whether the kernel segments UDP for this socket
// (UDP_SEGMENT, Linux 4.18).
func gsoSupported(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	_ = rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	})
	return ok
}

// putSegmentCmsg writes a UDP_SEGMENT control message of size seg to b.
func putSegmentCmsg(b []byte, seg int) {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = uint16(seg)
}
