package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

func benchLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// roundResult is one round: the baseline, then the full buy path.
type roundResult struct{ base, full caseResult }

// ratio is the full path's gateway CPU per request over the baseline's.
func (r roundResult) ratio() float64 {
	return r.full.cpuPerReq("gateway") / r.base.cpuPerReq("gateway")
}

// medianRound returns the round whose ratio is the median (the lower
// middle one for an even count).
func medianRound(rs []roundResult) roundResult {
	sorted := append([]roundResult(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ratio() < sorted[j].ratio() })
	return sorted[(len(sorted)-1)/2]
}

// render prints the benchmark as a markdown table with the ratios.
func render(o options, rounds []roundResult, http []caseResult, gwIdleMs float64, p persistResult, l lateResult) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "Measured %s on %s (%d cores), `make bench`: rate %d req/s, each HTTP case %v measured after %v of warm-up; "+
		"%d rounds of baseline then full path, the table shows the round with the median ratio.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), o.rate, o.duration, o.warmup, len(rounds))
	b.WriteString("| case | sent req/s | p50 | p99 | success | CPU µs/req: gateway | redis | nats | worker | loadgen |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range http {
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
			c.name, c.metrics.Rate, ms(c.metrics.Latencies.P50), ms(c.metrics.Latencies.P99), codes(c.metrics.StatusCodes),
			c.cpuPerReq("gateway"), c.cpuPerReq("redis"), c.cpuPerReq("nats"), c.cpuPerReq("worker"), c.cpuPerReq("loadgen"))
	}
	if len(http) >= 2 {
		base, full := http[0].cpuPerReq("gateway"), http[1].cpuPerReq("gateway")
		fmt.Fprintf(&b, "\nFull buy path / baseline, gateway CPU per request: **%.2f×** (target ≤ 1.25×).\n", full/base)
		all := make([]string, len(rounds))
		for i, r := range rounds {
			all[i] = fmt.Sprintf("%.1f/%.1f µs = %.2f×", r.full.cpuPerReq("gateway"), r.base.cpuPerReq("gateway"), r.ratio())
		}
		fmt.Fprintf(&b, "Every round (full/baseline): %s.\n", strings.Join(all, "; "))
		baseAll := http[0].cpuPerReq("gateway") + http[0].cpuPerReq("redis")
		fullAll := full + http[1].cpuPerReq("redis") + http[1].cpuPerReq("nats")
		fmt.Fprintf(&b, "Including the servers it uses (Redis, NATS): %.2f×.\n", fullAll/baseAll)
	}
	if gwIdleMs > 0 {
		fmt.Fprintf(&b, "\nThe seckill gateway with no traffic spends %.1f ms of CPU per second (lease renewals, catalog refresh, sold-out re-check, GC): %.1f µs of each request's share at %d req/s.\n",
			gwIdleMs, gwIdleMs*1000/float64(o.rate), o.rate)
	}
	for _, c := range http {
		if c.note != "" {
			fmt.Fprintf(&b, "\n%s: %s.\n", c.name, c.note)
		}
	}
	if o.httpOnly {
		return b.String()
	}
	fmt.Fprintf(&b, "\nPersister: %d orders from a JetStream backlog into PostgreSQL in %v: **%.0f orders/s** (target ≥ 20,000).\n",
		p.orders, p.elapsed.Round(time.Millisecond), p.perSec)
	fmt.Fprintf(&b, "\nPayment timeouts, %d pending orders due over 20 s: lateness p50 %s, **p99 %s**, max %s; early: **%d**; not cancelled: %d (target p99 ≤ 500 ms, none early).\n",
		l.orders, ms(l.p50), ms(l.p99), ms(l.max), l.early, l.notCancelled)
	return b.String()
}

func codes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
