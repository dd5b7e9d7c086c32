package scenario

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// progress prints one line a second while the attack runs: answers per
// second over the last second, outcomes so far, latency p50/p99 so far and
// requests in flight. It goes to stderr so stdout holds only the report.
type progress struct {
	name  string
	w     io.Writer
	began time.Time

	mu       sync.Mutex
	counts   map[string]int
	total    int
	lastTot  int
	lastAt   time.Time
	lat      vegeta.LatencyMetrics // t-digest: constant memory at any rate
	inflight int

	quit chan struct{}
	done chan struct{}
}

func newProgress(name string, w io.Writer) *progress {
	return &progress{name: name, w: w, counts: map[string]int{}, quit: make(chan struct{}), done: make(chan struct{})}
}

func (p *progress) start() {
	p.began = time.Now()
	p.lastAt = p.began
	go func() {
		defer close(p.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.print()
			}
		}
	}()
}

// stop ends the ticker and prints the last line, whose rate is the
// average of the whole attack (its last interval is a fraction of a second).
func (p *progress) stop() {
	close(p.quit)
	<-p.done
	p.mu.Lock()
	p.lastTot, p.lastAt = 0, p.began
	p.mu.Unlock()
	p.print()
}

func (p *progress) add(label string, latency time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[label]++
	p.total++
	p.lat.Add(latency)
}

func (p *progress) setInFlight(n int) {
	p.mu.Lock()
	p.inflight = n
	p.mu.Unlock()
}

func (p *progress) print() {
	p.mu.Lock()
	now := time.Now()
	rate := float64(p.total-p.lastTot) / max(now.Sub(p.lastAt).Seconds(), 1e-3)
	p.lastTot, p.lastAt = p.total, now
	line := fmt.Sprintf("[%s %4.0fs] answered %d (%.0f/s) in flight %d | %s",
		p.name, now.Sub(p.began).Seconds(), p.total, rate, p.inflight, OutcomeList(p.counts, 6))
	if p.total > 0 {
		line += fmt.Sprintf(" | p50 %s p99 %s", RoundDur(p.lat.Quantile(0.5)), RoundDur(p.lat.Quantile(0.99)))
	}
	p.mu.Unlock()
	fmt.Fprintln(p.w, line)
}

// OutcomeList formats counts largest first, at most n entries.
func OutcomeList(counts map[string]int, n int) string {
	type kv struct {
		k string
		v int
	}
	var kvs []kv
	for k, v := range counts {
		kvs = append(kvs, kv{k, v})
	}
	slices.SortFunc(kvs, func(a, b kv) int {
		if c := cmp.Compare(b.v, a.v); c != 0 {
			return c
		}
		return strings.Compare(a.k, b.k)
	})
	var parts []string
	for i, e := range kvs {
		if i == n {
			parts = append(parts, fmt.Sprintf("+%d more", len(kvs)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%s:%d", e.k, e.v))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// RoundDur keeps three significant digits or so: 1.23ms, 45.6ms, 1.2s.
func RoundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
