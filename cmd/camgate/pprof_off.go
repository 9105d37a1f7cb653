//go:build !camgate_pprof

package main

// benchProfiling is a no-op: pprof is only in camgate_pprof builds (pprof_bench.go).
func benchProfiling() {}
