package main

import (
	"fmt"
	"time"
)

// steady is the success path: stock for every request, a constant rate.
// Every buy must be accepted and persisted.
type steady struct{}

func (steady) about() string { return "large stock, constant rate: the success path" }

func (steady) defaults(c *Config) {
	if c.Rate == 0 {
		c.Rate = 500
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Stock == 0 {
		c.Stock = int64(max(1, plannedRequests(*c))) // enough for every request
	}
	commonDefaults(c)
}

func (steady) plan(r *session) []*attempt { return planOnePerRequest(r) }

func (steady) react(*session, *attempt, time.Time) []*attempt { return nil }

func (steady) tail(c Config) time.Duration { return c.Timeout + c.Duration/2 }

func (steady) settled(r *session, st itemStats) bool { return drainedOrders(r, st) }

// checks: S1, every planned buy answered 202 (when stock and users allow it).
func (steady) checks(r *session, f *facts) []check {
	planned := plannedRequests(r.cfg)
	want := min(int64(planned), r.cfg.Stock, int64(r.cfg.Users)*r.cfg.Limit)
	var accepted, refused, unanswered int
	for _, a := range r.src.attempts() {
		switch {
		case !a.answered:
			unanswered++
		case a.status == 202:
			accepted++
		default:
			refused++
		}
	}
	return []check{{id: "S1", name: "every buy accepted",
		pass: int64(accepted) == want && int64(len(r.accepted)) == want && f.liveUnits == want,
		detail: fmt.Sprintf("%d of %d planned buys answered 202 (%d distinct orders, %d live units; want %d); "+
			"%d refused or failed, %d never answered", accepted, planned, len(r.accepted), f.liveUnits, want,
			refused, unanswered)}}
}
