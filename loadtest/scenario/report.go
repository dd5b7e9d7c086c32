package scenario

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

// Report prints the attack's numbers: per kind of request, vegeta's text
// Report (rate, throughput, latency percentiles, status codes), its latency
// histogram and the outcomes by code.
func (r *Session) Report(out *attackOutput) {
	w := r.Stdout
	elapsed := out.ended.Sub(out.began)
	fmt.Fprintf(w, "\n== attack: %v, %d never sent\n", elapsed.Round(time.Millisecond), out.unsent)
	for _, k := range []OpKind{OpBuy, OpPay, OpCancel} {
		m := out.metrics[k]
		if m == nil {
			continue
		}
		fmt.Fprintf(w, "\n-- %s: %d requests --\n", k, m.Requests)
		_ = vegeta.NewTextReporter(m).Report(w)
		fmt.Fprintf(w, "Latency percentiles  p50 %s  p90 %s  p99 %s  max %s\n",
			RoundDur(m.Latencies.P50), RoundDur(m.Latencies.P90), RoundDur(m.Latencies.P99), RoundDur(m.Latencies.Max))
		fmt.Fprintln(w, "Latency histogram:")
		_ = vegeta.NewHistogramReporter(m.Histogram).Report(w)
		fmt.Fprintln(w, "Outcomes:")
		printOutcomes(r, out.outcomes[k], m.Requests)
	}
	secs := max(elapsed.Seconds(), 1e-3)
	fmt.Fprintf(w, "\nAccepted: %d orders (%.1f/s over the attack)\n", len(r.Accepted), float64(len(r.Accepted))/secs)
	fmt.Fprintf(w, "Files: %s, %s\n", out.resultsPath, out.plotPath)
}

func printOutcomes(r *Session, counts map[string]int, total uint64) {
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
		fmt.Fprintf(r.Stdout, "  %-*s %8d  %6.2f%%\n", width, e.k, e.v, 100*float64(e.v)/float64(max(total, 1)))
	}
}

// PrintChecks prints the verification: the final stats and each check with
// PASS or FAIL and its numbers.
func (r *Session) PrintChecks(f *Facts, checks []Check) {
	w := r.Stdout
	fmt.Fprintf(w, "\n== verification (activity %d, item %d)\n", r.Act.ID, r.Act.ItemID)
	fmt.Fprintf(w, "  drain: %s\n", f.DrainNote)
	fmt.Fprintf(w, "  stats: %s\n", FormatStats(f.stats))
	fmt.Fprintf(w, "  rows:  %d orders, %d users; redis available %d\n", len(f.Rows), f.users, f.redisAvailable)
	width := 0
	for _, c := range checks {
		width = max(width, len(c.ID)+1+len(c.Name))
	}
	failed := 0
	for _, c := range checks {
		verdict := "PASS"
		if !c.Pass {
			verdict = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "  %-*s  %s  %s\n", width, c.ID+" "+c.Name, verdict, c.Detail)
	}
	if failed == 0 {
		fmt.Fprintf(w, "RESULT: PASS (%d checks)\n", len(checks))
	} else {
		fmt.Fprintf(w, "RESULT: FAIL (%d of %d checks failed)\n", failed, len(checks))
	}
}
