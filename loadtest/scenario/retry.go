package scenario

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
	BuyBackoff    = 100 * time.Millisecond
	BuyMaxWait    = time.Second
	buyMaxRetries = 4
)

func (retry) About() string {
	return "buyers resend with one Idempotency-Key and retry on timeout/5xx: at most one order each"
}

func (retry) Defaults(c *Config) {
	if c.Rate == 0 {
		c.Rate = 1000
	}
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.Users == 0 {
		c.Users = max(1, PlannedRequests(*c)*2/5) // 2.5 sends per buyer on average
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
func idempotencyKey(r *Session, b int) string { return fmt.Sprintf("lt-%d-%d", r.Act.ID, b) }

// Plan spreads the buyers' first sends evenly over the duration and puts
// each resend either right behind (a double click, in flight together) or
// 50 ms–1 s later (a refresh), then sends them in time order.
func (retry) Plan(r *Session) []*Attempt {
	type ev struct {
		at time.Duration
		a  *Attempt
	}
	var evs []ev
	step := r.Config.Duration / time.Duration(r.Config.Users)
	for b := range r.Config.Users {
		at := time.Duration(b) * step
		first := &Attempt{Kind: OpBuy, Buyer: b, Key: idempotencyKey(r, b)}
		if r.RNG.Float64() < r.Config.AbandonShare {
			// Anywhere from before the request is written to after the
			// server answered: each is a different kind of lost response.
			first.abandonAfter = 1 + time.Duration(r.RNG.Int64N(int64(r.Config.AbandonAfter)))
		}
		evs = append(evs, ev{at, first})
		sends := 2 + r.RNG.IntN(2)
		for range sends - 1 {
			off := time.Duration(r.RNG.Float64() * float64(5*time.Millisecond))
			if r.RNG.IntN(2) == 0 {
				off = 50*time.Millisecond + time.Duration(r.RNG.Float64()*float64(950*time.Millisecond))
			}
			evs = append(evs, ev{at + off, &Attempt{Kind: OpBuy, Buyer: b, Key: first.Key}})
		}
	}
	slices.SortStableFunc(evs, func(x, y ev) int { return int(x.at - y.at) })
	out := make([]*Attempt, len(evs))
	for i, e := range evs {
		out[i] = e.a
	}
	return out
}

func (retry) React(_ *Session, a *Attempt, now time.Time) []*Attempt {
	if a.Kind == OpBuy && a.Retryable() && a.Retries < buyMaxRetries {
		return []*Attempt{a.Retry(now, BuyBackoff<<a.Retries, BuyMaxWait)}
	}
	return nil
}

func (retry) Tail(c Config) time.Duration { return time.Second + buyMaxRetries*(BuyMaxWait+c.Timeout) }

func (retry) Settled(r *Session, st ItemStats) bool { return DrainedOrders(r, st) }

// Checks: R1 one order per buyer (by the rows), R2 one order id per key (by
// the answers), R3 no buyer who holds an order was refused.
func (retry) Checks(r *Session, f *Facts) []Check {
	type buyer struct {
		ids                           map[int64]bool // order ids answered 202
		refusals                      []string       // final 4xx answers
		sends, retries, abandoned, ok int
	}
	buyers := make([]buyer, r.Config.Users)
	for _, a := range r.Src.Attempts() {
		if a.Kind != OpBuy || !a.answered {
			continue
		}
		b := &buyers[a.Buyer]
		b.sends++
		if a.Retries > 0 {
			b.retries++
		}
		if a.abandonAfter > 0 && a.Status == 0 {
			b.abandoned++
		}
		switch {
		case a.Status == 202:
			if b.ids == nil {
				b.ids = map[int64]bool{}
			}
			b.ids[a.GotOrder] = true
			b.ok++
		case a.Status >= 400 && a.Status < 500 && a.Status != 429:
			b.refusals = append(b.refusals, label(a))
		}
	}
	rowsOf := map[int64][]*OrderRow{}
	for i := range f.Rows {
		rowsOf[f.Rows[i].userID] = append(rowsOf[f.Rows[i].userID], &f.Rows[i])
	}
	var sends, retries, abandoned, multiRows, multiIDs, idNotRow, refusedHolders, silentHolders int
	refusedCodes := map[string]int{}
	for i, b := range buyers {
		sends += b.sends
		retries += b.retries
		abandoned += b.abandoned
		rows := rowsOf[r.UserID(i)]
		if len(rows) > 1 {
			multiRows++
		}
		if len(b.ids) > 1 {
			multiIDs++
		}
		for id := range b.ids {
			if len(rows) != 1 || rows[0].ID != id {
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
	return []Check{
		{ID: "R1", Name: "one order per buyer", Pass: multiRows == 0,
			Detail: fmt.Sprintf("%d buyers sent %d buys (%d retries, %d abandoned by the client); "+
				"%d buyers hold more than one row", r.Config.Users, sends, retries, abandoned, multiRows)},
		{ID: "R2", Name: "one order id per key", Pass: multiIDs == 0 && idNotRow == 0,
			Detail: fmt.Sprintf("%d keys answered 202 with different order ids; %d 202 ids that are not the buyer's one row",
				multiIDs, idNotRow)},
		{ID: "R3", Name: "no holder refused", Pass: refusedHolders == 0, Detail: r3},
	}
}
