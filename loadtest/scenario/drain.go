package scenario

import (
	"context"
	"fmt"
	"time"
)

// stableFor is how long unchanged stats with nothing reserved or being
// returned count as drained even when they do not add up: the verification
// then says what is missing, rather than the run waiting out its timeout.
const stableFor = 3 * time.Second

// Drain waits until the scenario sees the pipeline settled (every accepted
// order persisted, every return done), the stats stop changing, or the drain
// timeout passes. It returns the last stats and how the wait ended.
//
// When payment timeouts fall inside the wait, it lasts at least until the
// last accepted order expired, and the timeout counts from then.
func (r *Session) Drain(ctx context.Context) (ItemStats, string, error) {
	start := time.Now()
	deadline := start.Add(r.Config.DrainTimeout)
	var notBefore time.Time
	if r.Config.PayTimeout <= r.Config.DrainTimeout && !r.lastAccept.IsZero() {
		notBefore = r.lastAccept.Add(r.Config.PayTimeout + 2*time.Second)
		deadline = MaxTime(deadline, r.lastAccept.Add(r.Config.PayTimeout+r.Config.DrainTimeout))
	}
	var (
		last    ItemStats
		since   time.Time
		lastErr error
	)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := r.API.stats(ctx, r.Act)
		now := time.Now()
		switch {
		case err != nil:
			lastErr = err // the gateway may still be busy; keep asking until the deadline
		case r.Scenario.Settled(r, st):
			return st, fmt.Sprintf("settled %v after the attack", now.Sub(start).Round(time.Millisecond)), nil
		case st != last || st.Reserved != 0 || st.Returning != 0:
			last, since = st, now
		case now.Sub(since) >= stableFor && now.After(notBefore):
			return st, fmt.Sprintf("NOT settled: stats unchanged for %v (%v after the attack)",
				stableFor, now.Sub(start).Round(time.Millisecond)), nil
		}
		if now.After(deadline) {
			if last == (ItemStats{}) {
				return ItemStats{}, "", fmt.Errorf("drain: no stats within %v: %w", r.Config.DrainTimeout, lastErr)
			}
			return last, fmt.Sprintf("NOT settled: drain timeout after %v", now.Sub(start).Round(time.Millisecond)), nil
		}
		select {
		case <-ctx.Done():
			return ItemStats{}, "", ctx.Err()
		case <-tick.C:
		}
	}
}

// MaxTime is the later of a and b.
func MaxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
