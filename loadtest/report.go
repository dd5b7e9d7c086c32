package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// histogramBuckets are the latency report's buckets: fine below 10 ms,
// where a healthy buy path answers, coarse above.
var histogramBuckets = vegeta.Buckets{
	0, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
}

// report prints the attack's numbers: per kind of request, vegeta's text
// report (rate, throughput, latency percentiles, status codes), its latency
// histogram and the outcomes by code.
func (r *session) report(out *attackOutput) {
	w := r.stdout
	elapsed := out.ended.Sub(out.began)
	fmt.Fprintf(w, "\n== attack: %v, %d never sent\n", elapsed.Round(time.Millisecond), out.unsent)
	for _, k := range []opKind{opBuy, opPay, opCancel} {
		m := out.metrics[k]
		if m == nil {
			continue
		}
		fmt.Fprintf(w, "\n-- %s: %d requests --\n", k, m.Requests)
		_ = vegeta.NewTextReporter(m).Report(w)
		fmt.Fprintf(w, "Latency percentiles  p50 %s  p90 %s  p99 %s  max %s\n",
			roundDur(m.Latencies.P50), roundDur(m.Latencies.P90), roundDur(m.Latencies.P99), roundDur(m.Latencies.Max))
		fmt.Fprintln(w, "Latency histogram:")
		_ = vegeta.NewHistogramReporter(m.Histogram).Report(w)
		fmt.Fprintln(w, "Outcomes:")
		printOutcomes(r, out.outcomes[k], m.Requests)
	}
	secs := max(elapsed.Seconds(), 1e-3)
	fmt.Fprintf(w, "\nAccepted: %d orders (%.1f/s over the attack)\n", len(r.accepted), float64(len(r.accepted))/secs)
	fmt.Fprintf(w, "Files: %s, %s\n", out.resultsPath, out.plotPath)
}

func printOutcomes(r *session, counts map[string]int, total uint64) {
	type kv struct {
		k string
		v int
	}
	var kvs []kv
	width := 0
	for k, v := range counts {
		kvs = append(kvs, kv{k, v})
		width = max(width, len(k))
	}
	slices.SortFunc(kvs, func(a, b kv) int {
		if c := cmp.Compare(b.v, a.v); c != 0 {
			return c
		}
		return strings.Compare(a.k, b.k)
	})
	for _, e := range kvs {
		fmt.Fprintf(r.stdout, "  %-*s %8d  %6.2f%%\n", width, e.k, e.v, 100*float64(e.v)/float64(max(total, 1)))
	}
}

// printChecks prints the verification: the final stats and each check with
// PASS or FAIL and its numbers.
func (r *session) printChecks(f *facts, checks []check) {
	w := r.stdout
	fmt.Fprintf(w, "\n== verification (activity %d, item %d)\n", r.act.ID, r.act.ItemID)
	fmt.Fprintf(w, "  drain: %s\n", f.drainNote)
	fmt.Fprintf(w, "  stats: %s\n", f.stats)
	fmt.Fprintf(w, "  rows:  %d orders, %d users; redis available %d\n", len(f.rows), f.users, f.redisAvailable)
	width := 0
	for _, c := range checks {
		width = max(width, len(c.id)+1+len(c.name))
	}
	failed := 0
	for _, c := range checks {
		verdict := "PASS"
		if !c.pass {
			verdict = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "  %-*s  %s  %s\n", width, c.id+" "+c.name, verdict, c.detail)
	}
	if failed == 0 {
		fmt.Fprintf(w, "RESULT: PASS (%d checks)\n", len(checks))
	} else {
		fmt.Fprintf(w, "RESULT: FAIL (%d of %d checks failed)\n", failed, len(checks))
	}
}
