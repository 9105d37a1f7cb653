package archive

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeAll writes bufs to f in order with writev: a part (moof, mdat header
// and every track's payload chunks) is one system call instead of one per
// chunk.
func writeAll(f *os.File, bufs [][]byte) (int64, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return writeEach(f, bufs)
	}
	var total int64
	var werr error
	cerr := raw.Write(func(fd uintptr) bool {
		for len(bufs) > 0 {
			batch := bufs[:min(len(bufs), 1024)] // IOV_MAX
			n, err := unix.Writev(int(fd), batch)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				werr = err
				return true
			}
			total += int64(n)
			// Skip what was written (a short write leaves part of a buffer).
			for n > 0 && len(bufs) > 0 {
				if n >= len(bufs[0]) {
					n -= len(bufs[0])
					bufs = bufs[1:]
				} else {
					bufs[0] = bufs[0][n:]
					n = 0
				}
			}
			for len(bufs) > 0 && len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
		}
		return true
	})
	if werr != nil {
		return total, &os.PathError{Op: "writev", Path: f.Name(), Err: werr}
	}
	return total, cerr
}
