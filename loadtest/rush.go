package main

import (
	"fmt"
	"time"
)

// rush is the sell-out the product exists for: many users, a small stock,
// a burst at --rate. Exactly the stock must be sold, and every other buyer
// told SOLD_OUT.
type rush struct{}

func (rush) about() string { return "many users, small stock, a burst at --rate: the sell-out" }

func (rush) defaults(c *Config) {
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

func (rush) plan(r *session) []*attempt { return planOnePerRequest(r) }

func (rush) react(*session, *attempt, time.Time) []*attempt { return nil }

// tail lets the last requests be answered and a generator that fell behind
// the rate catch up.
func (rush) tail(c Config) time.Duration { return c.Timeout + c.Duration/2 }

func (rush) settled(r *session, st itemStats) bool { return drainedOrders(r, st) }

// checks: S1, the sell-out. What can be sold is the stock, unless there are
// fewer requests or users × limit than units.
func (rush) checks(r *session, f *facts) []check {
	want := min(r.cfg.Stock, int64(r.cfg.Users)*r.cfg.Limit, int64(plannedRequests(r.cfg)))
	soldOut, other := 0, 0
	for _, a := range r.src.attempts() {
		switch {
		case !a.answered || a.status == 202:
		case a.status == 409 && a.code == "SOLD_OUT":
			soldOut++
		default:
			other++
		}
	}
	sold := int64(len(r.accepted))
	return []check{{id: "S1", name: "sold exactly the stock",
		pass: sold == want && f.liveUnits == want && f.redisAvailable == r.cfg.Stock-want,
		detail: fmt.Sprintf("%d accepted, %d live units, redis available %d; want %d sold (stock %d); "+
			"%d answered SOLD_OUT, %d other refusals/errors", sold, f.liveUnits, f.redisAvailable, want,
			r.cfg.Stock, soldOut, other)}}
}
