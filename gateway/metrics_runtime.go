package gateway

import (
	"fmt"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// processStart is when this process started, for process_start_time_seconds.
var processStart = time.Now()

// runtimeNames are the runtime/metrics read at each scrape; the samples are
// built per scrape (a scrape is seconds apart, not a hot path).
var runtimeNames = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/total:bytes",
	"/gc/cycles/total:gc-cycles",
	"/sched/goroutines:goroutines",
}

// writeRuntimeMetrics appends the Go runtime and process families under
// the names Prometheus' own client uses, so existing dashboards work.
func writeRuntimeMetrics(b *strings.Builder) {
	samples := make([]rtmetrics.Sample, len(runtimeNames))
	for i, n := range runtimeNames {
		samples[i].Name = n
	}
	rtmetrics.Read(samples)
	val := func(i int) uint64 {
		if samples[i].Value.Kind() == rtmetrics.KindUint64 {
			return samples[i].Value.Uint64()
		}
		return 0
	}
	fmt.Fprintf(b, "# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines %d\n", runtime.NumGoroutine())
	fmt.Fprintf(b, "# HELP go_memstats_heap_alloc_bytes Bytes of allocated heap objects.\n# TYPE go_memstats_heap_alloc_bytes gauge\ngo_memstats_heap_alloc_bytes %d\n", val(0))
	fmt.Fprintf(b, "# HELP go_memstats_sys_bytes Bytes of memory obtained from the OS.\n# TYPE go_memstats_sys_bytes gauge\ngo_memstats_sys_bytes %d\n", val(1))
	fmt.Fprintf(b, "# HELP go_gc_cycles_total Completed GC cycles.\n# TYPE go_gc_cycles_total counter\ngo_gc_cycles_total %d\n", val(2))
	fmt.Fprintf(b, "# HELP go_info Information about the Go environment.\n# TYPE go_info gauge\ngo_info{version=\"%s\"} 1\n", promLabel(runtime.Version()))
	fmt.Fprintf(b, "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %d\n", processStart.Unix())
	if cpu, rss, ok := procStat(); ok {
		fmt.Fprintf(b, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n", cpu)
		fmt.Fprintf(b, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %d\n", rss)
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		fmt.Fprintf(b, "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds %d\n", len(fds))
	}
}

// procStat reads CPU seconds and RSS bytes from /proc/self/stat (Linux);
// ok is false elsewhere.
func procStat() (cpuSeconds float64, rssBytes int64, ok bool) {
	raw, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, false
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 22 {
		return 0, 0, false
	}
	// f[0] is field 3 (state): utime is field 14, stime 15, rss 24.
	utime, e1 := strconv.ParseFloat(f[11], 64)
	stime, e2 := strconv.ParseFloat(f[12], 64)
	rss, e3 := strconv.ParseInt(f[21], 10, 64)
	if e1 != nil || e2 != nil || e3 != nil {
		return 0, 0, false
	}
	const clockTicks = 100 // USER_HZ on Linux
	return (utime + stime) / clockTicks, rss * int64(os.Getpagesize()), true
}
