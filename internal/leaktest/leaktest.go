// Package leaktest fails a test binary that leaves goroutines behind: every
// server, connection writer, pump and timer a test starts must be joined by
// the Close that ends it (CONVENTIONS: no goroutine that nobody can stop).
package leaktest

import (
	"testing"

	"go.uber.org/goleak"
)

// known are goroutines that are not ours to join: fasthttp keeps one
// process-wide Date-header ticker, a stopped worker pool's cleaner sleeps out
// its idle period (10 s) before it sees the stop, and a client's idle
// connection cleaners end on their own once their connections are gone;
// ctx.SendFile serves through one process-wide FS whose cache cleaner and
// stackless compression workers live as long as the process.
var known = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*inMemoryCacheManager).handleCleanCache"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp/stackless.funcWorker"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
}

// VerifyTestMain runs the package's tests and then fails when a goroutine
// started by them is still running. Use it as the package's TestMain.
func VerifyTestMain(m *testing.M) { goleak.VerifyTestMain(m, known...) }
