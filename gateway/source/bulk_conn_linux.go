package source

import (
	"net"
	"syscall"
)

// setRcvLowat sets SO_RCVLOWAT: epoll reports the socket readable once n
// bytes are queued (or at EOF/error), so one read takes them all.
func setRcvLowat(c *net.TCPConn, n int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
	}); err != nil {
		return err
	}
	return serr
}
