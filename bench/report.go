package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// result is one target's figures for one round.
type result struct {
	Target  string             `json:"target"`
	Round   int                `json:"round"`
	Metrics map[string]float64 `json:"metrics"`
}

// printTable prints each metric averaged over rounds per target, and the
// ratio camgate ÷ mediamtx.
func printTable(w io.Writer, scenario string, res []result) {
	sums := map[string]map[string]float64{}
	counts := map[string]int{}
	var metrics []string
	seen := map[string]bool{}
	for _, r := range res {
		if sums[r.Target] == nil {
			sums[r.Target] = map[string]float64{}
		}
		counts[r.Target]++
		for k, v := range r.Metrics {
			if !seen[k] {
				seen[k] = true
				metrics = append(metrics, k)
			}
			sums[r.Target][k] += v
		}
	}
	sort.Strings(metrics)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "\n%s (mean of %d rounds)\n", scenario, counts["camgate"])
	fmt.Fprintln(tw, "metric\tmediamtx\tcamgate\tcamgate ÷ mediamtx\t")
	for _, m := range metrics {
		a := sums["mediamtx"][m] / float64(max(counts["mediamtx"], 1))
		b := sums["camgate"][m] / float64(max(counts["camgate"], 1))
		ratio := "-"
		if math.Abs(a) > 1e-9 {
			ratio = fmt.Sprintf("%.2f", b/a)
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%s\t\n", m, a, b, ratio)
	}
	tw.Flush()
}

// progress is a one-line progress bar on stderr, by time or by count.
type progress struct {
	label string
	start time.Time
	total float64
	byDur bool
	n     float64
}

func newProgress[T time.Duration | int](label string, total T) *progress {
	p := &progress{label: label, start: time.Now(), total: float64(total)}
	_, p.byDur = any(total).(time.Duration)
	p.update()
	return p
}

func (p *progress) add(n int) { p.n += float64(n); p.update() }

func (p *progress) update() {
	done := p.n
	if p.byDur {
		done = float64(time.Since(p.start))
	}
	frac := min(done/p.total, 1)
	const width = 30
	fill := int(frac * width)
	fmt.Fprintf(os.Stderr, "\r  [%s%s] %3.0f%% %s", strings.Repeat("#", fill), strings.Repeat(" ", width-fill), frac*100, p.label)
}

func (p *progress) done() {
	if p.byDur {
		p.n = p.total
	}
	p.update()
	fmt.Fprintln(os.Stderr)
}
