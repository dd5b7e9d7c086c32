package scenario

import (
	"fmt"
	"time"
)

// rush is the sell-out the product exists for: many users, a small stock,
// a burst at --rate. Exactly the stock must be sold, and every other buyer
// told SOLD_OUT.
type rush struct{}

func (rush) About() string { return "many users, small stock, a burst at --rate: the sell-out" }

func (rush) Defaults(c *Config) {
	if c.Rate == 0 {
		c.Rate = 2000
	}
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.Stock == 0 {
		c.Stock = 500
	}
	commonDefaults(c)
}

func (rush) Plan(r *Session) []*Attempt { return PlanOnePerRequest(r) }

func (rush) React(*Session, *Attempt, time.Time) []*Attempt { return nil }

// Tail lets the last requests be answered and a generator that fell behind
// the rate catch up.
func (rush) Tail(c Config) time.Duration { return c.Timeout + c.Duration/2 }

func (rush) Settled(r *Session, st ItemStats) bool { return DrainedOrders(r, st) }

// Checks: S1, the sell-out. What can be sold is the stock, unless there are
// fewer requests or users × limit than units.
func (rush) Checks(r *Session, f *Facts) []Check {
	want := min(r.Config.Stock, int64(r.Config.Users)*r.Config.Limit, int64(PlannedRequests(r.Config)))
	soldOut, other := 0, 0
	for _, a := range r.Src.Attempts() {
		switch {
		case !a.answered || a.Status == 202:
		case a.Status == 409 && a.Code == "SOLD_OUT":
			soldOut++
		default:
			other++
		}
	}
	sold := int64(len(r.Accepted))
	return []Check{{ID: "S1", Name: "sold exactly the stock",
		Pass: sold == want && f.liveUnits == want && f.redisAvailable == r.Config.Stock-want,
		Detail: fmt.Sprintf("%d accepted, %d live units, redis available %d; want %d sold (stock %d); "+
			"%d answered SOLD_OUT, %d other refusals/errors", sold, f.liveUnits, f.redisAvailable, want,
			r.Config.Stock, soldOut, other)}}
}
