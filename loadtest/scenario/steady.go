package scenario

import (
	"fmt"
	"time"
)

// steady is the success path: stock for every request, a constant rate.
// Every buy must be accepted and persisted.
type steady struct{}

func (steady) About() string { return "large stock, constant rate: the success path" }

func (steady) Defaults(c *Config) {
	if c.Rate == 0 {
		c.Rate = 500
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Stock == 0 {
		c.Stock = int64(max(1, PlannedRequests(*c))) // enough for every request
	}
	commonDefaults(c)
}

func (steady) Plan(r *Session) []*Attempt { return PlanOnePerRequest(r) }

func (steady) React(*Session, *Attempt, time.Time) []*Attempt { return nil }

func (steady) Tail(c Config) time.Duration { return c.Timeout + c.Duration/2 }

func (steady) Settled(r *Session, st ItemStats) bool { return DrainedOrders(r, st) }

// Checks: S1, every planned buy answered 202 (when stock and users allow it).
func (steady) Checks(r *Session, f *Facts) []Check {
	planned := PlannedRequests(r.Config)
	want := min(int64(planned), r.Config.Stock, int64(r.Config.Users)*r.Config.Limit)
	var accepted, refused, unanswered int
	for _, a := range r.Src.Attempts() {
		switch {
		case !a.answered:
			unanswered++
		case a.Status == 202:
			accepted++
		default:
			refused++
		}
	}
	return []Check{{ID: "S1", Name: "every buy accepted",
		Pass: int64(accepted) == want && int64(len(r.Accepted)) == want && f.liveUnits == want,
		Detail: fmt.Sprintf("%d of %d planned buys answered 202 (%d distinct orders, %d live units; want %d); "+
			"%d refused or failed, %d never answered", accepted, planned, len(r.Accepted), f.liveUnits, want,
			refused, unanswered)}}
}
