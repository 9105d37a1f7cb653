//go:build camgate_pprof

package main

import (
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
)

// benchProfiling: with the camgate_pprof build tag (bench -pprof builds
// it so), a node serves net/http/pprof on the address in CG_BENCH_PPROF, for
// profiling load scenarios. Release builds do not contain it.
func benchProfiling() {
	addr := os.Getenv("CG_BENCH_PPROF")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return
	}
	go http.Serve(ln, nil) //nolint:errcheck // profiling aid only
}
