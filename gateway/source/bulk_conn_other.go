//go:build !linux

package source

import (
	"errors"
	"net"
)

// setRcvLowat: gathered reads are a Linux feature here; elsewhere every
// packet is read as it comes.
func setRcvLowat(*net.TCPConn, int) error { return errors.ErrUnsupported }
