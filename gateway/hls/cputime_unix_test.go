//go:build unix

package hls

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) this process has used, all
// threads included: benchmarks report it per request, which is what a busy
// machine shows rather than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
