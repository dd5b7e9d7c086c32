package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// retry is the impatient crowd: every logical buyer sends its buy two or
// three times with one Idempotency-Key (double clicks close together,
// refreshes later), some clients stop waiting within --abandon-after while
// the server may still work (a lost response), and every send answered by no
// response, 5xx or 429 is retried with the same key. The per-user limit is
// 2 by default, so only the key stands between a buyer and a second order.
type retry struct{}

// Buy retries: exponential backoff from 100 ms, Retry-After honoured up to 1 s.
const (
	buyBackoff    = 100 * time.Millisecond
	buyMaxWait    = time.Second
	buyMaxRetries = 4
)

func (retry) about() string {
	return "buyers resend with one Idempotency-Key and retry on timeout/5xx: at most one order each"
}

func (retry) defaults(c *Config) {
	if c.Rate == 0 {
		c.Rate = 1000
	}
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.Users == 0 {
		c.Users = max(1, plannedRequests(*c)*2/5) // 2.5 sends per buyer on average
	}
	if c.Stock == 0 {
		c.Stock = int64(max(1, c.Users/2)) // sells out while resends are still coming
	}
	if c.Limit == 0 {
		c.Limit = 2
	}
	commonDefaults(c)
}

// idempotencyKey is buyer b's one key: 1–64 chars of [A-Za-z0-9_.:-].
func idempotencyKey(r *session, b int) string { return fmt.Sprintf("lt-%d-%d", r.act.ID, b) }

// plan spreads the buyers' first sends evenly over the duration and puts
// each resend either right behind (a double click, in flight together) or
// 50 ms–1 s later (a refresh), then sends them in time order.
func (retry) plan(r *session) []*attempt {
	type ev struct {
		at time.Duration
		a  *attempt
	}
	var evs []ev
	step := r.cfg.Duration / time.Duration(r.cfg.Users)
	for b := range r.cfg.Users {
		at := time.Duration(b) * step
		first := &attempt{kind: opBuy, buyer: b, key: idempotencyKey(r, b)}
		if r.rng.Float64() < r.cfg.AbandonShare {
			// Anywhere from before the request is written to after the
			// server answered: each is a different kind of lost response.
			first.abandonAfter = 1 + time.Duration(r.rng.Int64N(int64(r.cfg.AbandonAfter)))
		}
		evs = append(evs, ev{at, first})
		sends := 2 + r.rng.IntN(2)
		for range sends - 1 {
			off := time.Duration(r.rng.Float64() * float64(5*time.Millisecond))
			if r.rng.IntN(2) == 0 {
				off = 50*time.Millisecond + time.Duration(r.rng.Float64()*float64(950*time.Millisecond))
			}
			evs = append(evs, ev{at + off, &attempt{kind: opBuy, buyer: b, key: first.key}})
		}
	}
	slices.SortStableFunc(evs, func(x, y ev) int { return int(x.at - y.at) })
	out := make([]*attempt, len(evs))
	for i, e := range evs {
		out[i] = e.a
	}
	return out
}

func (retry) react(_ *session, a *attempt, now time.Time) []*attempt {
	if a.kind == opBuy && a.retryable() && a.retries < buyMaxRetries {
		return []*attempt{a.retry(now, buyBackoff<<a.retries, buyMaxWait)}
	}
	return nil
}

func (retry) tail(c Config) time.Duration { return time.Second + buyMaxRetries*(buyMaxWait+c.Timeout) }

func (retry) settled(r *session, st itemStats) bool { return drainedOrders(r, st) }

// checks: R1 one order per buyer (by the rows), R2 one order id per key (by
// the answers), R3 no buyer who holds an order was refused.
func (retry) checks(r *session, f *facts) []check {
	type buyer struct {
		ids                           map[int64]bool // order ids answered 202
		refusals                      []string       // final 4xx answers
		sends, retries, abandoned, ok int
	}
	buyers := make([]buyer, r.cfg.Users)
	for _, a := range r.src.attempts() {
		if a.kind != opBuy || !a.answered {
			continue
		}
		b := &buyers[a.buyer]
		b.sends++
		if a.retries > 0 {
			b.retries++
		}
		if a.abandonAfter > 0 && a.status == 0 {
			b.abandoned++
		}
		switch {
		case a.status == 202:
			if b.ids == nil {
				b.ids = map[int64]bool{}
			}
			b.ids[a.gotOrder] = true
			b.ok++
		case a.status >= 400 && a.status < 500 && a.status != 429:
			b.refusals = append(b.refusals, label(a))
		}
	}
	rowsOf := map[int64][]*orderRow{}
	for i := range f.rows {
		rowsOf[f.rows[i].userID] = append(rowsOf[f.rows[i].userID], &f.rows[i])
	}
	var sends, retries, abandoned, multiRows, multiIDs, idNotRow, refusedHolders, silentHolders int
	refusedCodes := map[string]int{}
	for i, b := range buyers {
		sends += b.sends
		retries += b.retries
		abandoned += b.abandoned
		rows := rowsOf[r.userID(i)]
		if len(rows) > 1 {
			multiRows++
		}
		if len(b.ids) > 1 {
			multiIDs++
		}
		for id := range b.ids {
			if len(rows) != 1 || rows[0].id != id {
				idNotRow++
			}
		}
		if len(rows) > 0 {
			if len(b.refusals) > 0 {
				refusedHolders++
				for _, c := range b.refusals {
					refusedCodes[c]++
				}
			}
			if b.ok == 0 {
				silentHolders++
			}
		}
	}
	var codes []string
	for c, n := range refusedCodes {
		codes = append(codes, fmt.Sprintf("%s ×%d", c, n))
	}
	slices.Sort(codes)
	r3 := fmt.Sprintf("%d buyers holding an order were refused for their key", refusedHolders)
	if len(codes) > 0 {
		r3 += " (" + strings.Join(codes, ", ") + ")"
	}
	r3 += fmt.Sprintf("; %d holders never saw their 202 (every send lost or retries exhausted)", silentHolders)
	return []check{
		{id: "R1", name: "one order per buyer", pass: multiRows == 0,
			detail: fmt.Sprintf("%d buyers sent %d buys (%d retries, %d abandoned by the client); "+
				"%d buyers hold more than one row", r.cfg.Users, sends, retries, abandoned, multiRows)},
		{id: "R2", name: "one order id per key", pass: multiIDs == 0 && idNotRow == 0,
			detail: fmt.Sprintf("%d keys answered 202 with different order ids; %d 202 ids that are not the buyer's one row",
				multiIDs, idNotRow)},
		{id: "R3", name: "no holder refused", pass: refusedHolders == 0, detail: r3},
	}
}
