//go:build !linux

package archive

import "os"

func writeAll(f *os.File, bufs [][]byte) (int64, error) { return writeEach(f, bufs) }
