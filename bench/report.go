package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// result is one target's figures for one round.
type result struct {
	Target  string             `json:"target"`
	Round   int                `json:"round"`
	Metrics map[string]float64 `json:"metrics"`
}

// printTable prints each metric averaged over rounds per target (in the
// order targets first appear), and each target's ratio to the baseline:
// mediamtx when it ran, else the first target. A metric a target did not
// report is "-".
func printTable(w io.Writer, scenario string, res []result) {
	type key struct{ target, metric string }
	sums := map[key]float64{}
	counts := map[key]int{}
	rounds := map[string]int{}
	var targets, metrics []string
	seen := map[string]bool{}
	for _, r := range res {
		if rounds[r.Target] == 0 {
			targets = append(targets, r.Target)
		}
		rounds[r.Target]++
		for k, v := range r.Metrics {
			if !seen[k] {
				seen[k] = true
				metrics = append(metrics, k)
			}
			sums[key{r.Target, k}] += v
			counts[key{r.Target, k}]++
		}
	}
	sort.Strings(metrics)
	base := ""
	if len(targets) > 1 {
		base = targets[0]
		if slices.Contains(targets, "mediamtx") {
			base = "mediamtx"
		}
	}
	fmt.Fprintf(w, "\n%s (mean of %d rounds)\n", scenario, slices.Max(slices.Collect(maps.Values(rounds))))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "metric\t")
	for _, t := range targets {
		fmt.Fprintf(tw, "%s\t", t)
	}
	for _, t := range targets {
		if base != "" && t != base {
			fmt.Fprintf(tw, "%s ÷ %s\t", t, base)
		}
	}
	fmt.Fprintln(tw)
	for _, m := range metrics {
		fmt.Fprintf(tw, "%s\t", m)
		avg := func(t string) (float64, bool) {
			n := counts[key{t, m}]
			return sums[key{t, m}] / float64(max(n, 1)), n > 0
		}
		for _, t := range targets {
			if v, ok := avg(t); ok {
				fmt.Fprintf(tw, "%s\t", format3(v))
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		b, bok := avg(base)
		for _, t := range targets {
			if base == "" || t == base {
				continue
			}
			v, ok := avg(t)
			if ok && bok && math.Abs(b) > 1e-9 {
				r := v / b
				if math.Abs(r) < 0.005 {
					r = 0 // no "-0.00" from rounding noise
				}
				fmt.Fprintf(tw, "%.2f\t", r)
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// format3 prints with three decimals below 1000 and none above.
func format3(v float64) string {
	if math.Abs(v) < 0.0005 {
		v = 0 // no "-0.000" from rounding noise
	}
	if math.Abs(v) >= 1000 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

// percentile returns the p-th percentile (0–100) of sorted values, nearest rank.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// progress is a one-line progress bar on stderr, by time or by count; safe
// for concurrent use.
type progress struct {
	mu    sync.Mutex
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

func (p *progress) add(n int) {
	p.mu.Lock()
	p.n += float64(n)
	p.mu.Unlock()
	p.update()
}

func (p *progress) update() {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := p.n
	if p.byDur && p.n < p.total {
		done = float64(time.Since(p.start))
	}
	frac := min(done/p.total, 1)
	const width = 30
	fill := int(frac * width)
	fmt.Fprintf(os.Stderr, "\r  [%s%s] %3.0f%% %s", strings.Repeat("#", fill), strings.Repeat(" ", width-fill), frac*100, p.label)
}

func (p *progress) done() {
	p.mu.Lock()
	if p.byDur {
		p.n = p.total
	}
	p.mu.Unlock()
	p.update()
	fmt.Fprintln(os.Stderr)
}
