package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// lifecycle runs orders through the whole state machine with a short
// payment window: of the accepted orders, --pay-share are paid by a signed
// callback, --cancel-share are cancelled by their buyer, and the rest time
// out. Payments and cancels are sent while the buys go on, retried on 503
// (the order is not persisted yet) until they get a final answer.
type lifecycle struct{}

// Follow-up retries: quick, because the payment window is short.
const (
	followUpBackoff    = 100 * time.Millisecond
	followUpMaxWait    = 250 * time.Millisecond
	followUpMaxRetries = 50
)

func (lifecycle) about() string {
	return "short payment timeout; accepted orders are paid, cancelled or left to time out"
}

func (lifecycle) defaults(c *Config) {
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.Stock == 0 {
		c.Stock = int64(max(1, plannedRequests(*c)))
	}
	if c.PayTimeout == 0 {
		c.PayTimeout = 3 * time.Second
	}
	commonDefaults(c)
}

func (lifecycle) plan(r *session) []*attempt { return planOnePerRequest(r) }

// react gives each newly accepted order its fate, and retries follow-ups
// whose answer was not final.
func (lifecycle) react(r *session, a *attempt, now time.Time) []*attempt {
	switch {
	case a.kind == opBuy && a.status == 202 && a.retries == 0:
		// Pay or cancel within the first half of the window, so most land
		// before the timer; those that do not are judged all the same.
		due := now.Add(time.Duration(r.rng.Float64() * float64(r.cfg.PayTimeout) / 2))
		switch x := r.rng.Float64(); {
		case x < r.cfg.PayShare:
			body := fmt.Appendf(nil, `{"order_id":"%d","trade_no":"lt-%d","amount_cents":%d,"paid_at":"%s"}`,
				a.gotOrder, a.gotOrder, r.act.PriceCents, now.UTC().Format(time.RFC3339Nano))
			return []*attempt{{kind: opPay, buyer: a.buyer, orderID: a.gotOrder, body: body, due: due}}
		case x < r.cfg.PayShare+r.cfg.CancelShare:
			return []*attempt{{kind: opCancel, buyer: a.buyer, orderID: a.gotOrder, due: due}}
		}
	case a.kind != opBuy && a.retryable() && a.retries < followUpMaxRetries:
		return []*attempt{a.retry(now, followUpBackoff, followUpMaxWait)}
	}
	return nil
}

// tail covers follow-ups of the last buys: half a window, plus retries.
func (lifecycle) tail(c Config) time.Duration { return c.PayTimeout + c.Timeout + 5*time.Second }

// settled: every order reached PAID or CANCELLED and every return finished.
func (lifecycle) settled(r *session, st itemStats) bool {
	return drainedOrders(r, st) && st.Pending == 0
}

// finalAnswers returns, per order, the last answered attempt of kind k.
func finalAnswers(r *session, k opKind) map[int64]*attempt {
	out := map[int64]*attempt{}
	for _, a := range r.src.attempts() { // in id order: retries come later
		if a.kind == k && a.answered {
			out[a.orderID] = a
		}
	}
	return out
}

func (lifecycle) checks(r *session, f *facts) []check {
	return []check{checkI6(r, f), checkI7(r, f)}
}

// checkI6: what the payer and the canceller were told is what the rows say:
// a 200 PAID is a PAID row with our trade number (paid is final), a 409
// ORDER_CLOSED a cancelled one (a cancelled order is never paid), a 200
// CANCELLED a USER cancel, a 409 NOT_PENDING a timeout that won the race.
// No row is PAID without a payment the provider was told succeeded.
func checkI6(r *session, f *facts) check {
	pays, cancels := finalAnswers(r, opPay), finalAnswers(r, opCancel)
	var paid, closed, userCancelled, lostRace, noAnswer, wrong int
	var examples []string
	bad := func(id int64, msg string) {
		wrong++
		if len(examples) < 3 {
			examples = append(examples, fmt.Sprintf("order %d %s", id, msg))
		}
	}
	for id, a := range pays {
		o := f.byID[id]
		switch {
		case o == nil:
			bad(id, "paid for but has no row")
		case a.status == 200 && a.gotStatus == "PAID":
			paid++
			if o.status != "PAID" || o.tradeNo != fmt.Sprintf("lt-%d", id) {
				bad(id, "answered PAID but row is "+o.status)
			}
		case a.status == 409 && a.code == "ORDER_CLOSED":
			closed++
			if o.status != "CANCELLED" {
				bad(id, "answered ORDER_CLOSED but row is "+o.status)
			}
		case a.retryable():
			noAnswer++
		default:
			bad(id, fmt.Sprintf("payment answered %d %s", a.status, a.code))
		}
	}
	for id, a := range cancels {
		o := f.byID[id]
		switch {
		case o == nil:
			bad(id, "cancelled but has no row")
		case a.status == 200 && a.gotStatus == "CANCELLED":
			userCancelled++
			if o.status != "CANCELLED" || o.reason != "USER" {
				bad(id, fmt.Sprintf("answered CANCELLED but row is %s %s", o.status, o.reason))
			}
		case a.status == 409 && a.code == "NOT_PENDING":
			lostRace++
			if o.status != "CANCELLED" || o.reason != "TIMEOUT" {
				bad(id, fmt.Sprintf("answered NOT_PENDING but row is %s %s", o.status, o.reason))
			}
		case a.retryable():
			noAnswer++
		default:
			bad(id, fmt.Sprintf("cancel answered %d %s", a.status, a.code))
		}
	}
	for _, o := range f.rows {
		if a := pays[o.id]; o.status == "PAID" && (a == nil || a.status != 200) {
			bad(o.id, "is PAID without a successful callback")
		}
	}
	detail := fmt.Sprintf("%d payments: %d PAID, %d ORDER_CLOSED (timer won); %d cancels: %d CANCELLED, "+
		"%d NOT_PENDING (timer won); %d without a final answer; %d contradicted by the rows",
		len(pays), paid, closed, len(cancels), userCancelled, lostRace, noAnswer, wrong)
	if len(examples) > 0 {
		detail += " (" + strings.Join(examples, "; ") + ")"
	}
	return check{id: "I6", name: "paid is final", pass: wrong == 0 && noAnswer == 0, detail: detail}
}

// checkI7: every unpaid order is closed: CANCELLED with USER when its buyer
// was told so, else TIMEOUT, never before expire_at, and p99 of the
// lateness (cancelled_at − expire_at, both PostgreSQL/Redis server clocks
// on one machine) at most one second.
func checkI7(r *session, f *facts) check {
	userOK := map[int64]bool{}
	for id, a := range finalAnswers(r, opCancel) {
		userOK[id] = a.status == 200
	}
	var late []time.Duration
	var open, early, wrongReason int
	for _, o := range f.rows {
		switch {
		case o.status == "PAID":
		case o.status != "CANCELLED" || o.cancelledAt == nil:
			open++
		case o.reason == "USER":
			if !userOK[o.id] {
				wrongReason++
			}
		case o.reason == "TIMEOUT":
			d := o.cancelledAt.Sub(o.expireAt)
			if d < 0 {
				early++
			}
			late = append(late, d)
		default:
			wrongReason++
		}
	}
	slices.Sort(late)
	q := func(p float64) time.Duration {
		if len(late) == 0 {
			return 0
		}
		return late[min(len(late)-1, int(p*float64(len(late))))]
	}
	p99 := q(0.99)
	return check{id: "I7", name: "timeliness",
		pass: open == 0 && early == 0 && wrongReason == 0 && p99 <= time.Second,
		detail: fmt.Sprintf("%d timed out: lateness p50 %s p99 %s max %s (p99 ≤ 1s), %d early; "+
			"%d unpaid orders still open, %d with a reason nobody asked for",
			len(late), roundDur(q(0.5)), roundDur(p99), roundDur(q(1)), early, open, wrongReason)}
}
