package scenario

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

func (lifecycle) About() string {
	return "short payment timeout; accepted orders are paid, cancelled or left to time out"
}

func (lifecycle) Defaults(c *Config) {
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.Stock == 0 {
		c.Stock = int64(max(1, PlannedRequests(*c)))
	}
	if c.PayTimeout == 0 {
		c.PayTimeout = 3 * time.Second
	}
	commonDefaults(c)
}

func (lifecycle) Plan(r *Session) []*Attempt { return PlanOnePerRequest(r) }

// React gives each newly accepted order its fate, and retries follow-ups
// whose answer was not final.
func (lifecycle) React(r *Session, a *Attempt, now time.Time) []*Attempt {
	switch {
	case a.Kind == OpBuy && a.Status == 202 && a.Retries == 0:
		// Pay or cancel within the first half of the window, so most land
		// before the timer; those that do not are judged all the same.
		due := now.Add(time.Duration(r.RNG.Float64() * float64(r.Config.PayTimeout) / 2))
		switch x := r.RNG.Float64(); {
		case x < r.Config.PayShare:
			body := fmt.Appendf(nil, `{"order_id":"%d","trade_no":"lt-%d","amount_cents":%d,"paid_at":"%s"}`,
				a.GotOrder, a.GotOrder, r.Act.PriceCents, now.UTC().Format(time.RFC3339Nano))
			return []*Attempt{{Kind: OpPay, Buyer: a.Buyer, OrderID: a.GotOrder, Body: body, Due: due}}
		case x < r.Config.PayShare+r.Config.CancelShare:
			return []*Attempt{{Kind: OpCancel, Buyer: a.Buyer, OrderID: a.GotOrder, Due: due}}
		}
	case a.Kind != OpBuy && a.Retryable() && a.Retries < followUpMaxRetries:
		return []*Attempt{a.Retry(now, followUpBackoff, followUpMaxWait)}
	}
	return nil
}

// Tail covers follow-ups of the last buys: half a window, plus retries.
func (lifecycle) Tail(c Config) time.Duration { return c.PayTimeout + c.Timeout + 5*time.Second }

// Settled: every order reached PAID or CANCELLED and every return finished.
func (lifecycle) Settled(r *Session, st ItemStats) bool {
	return DrainedOrders(r, st) && st.Pending == 0
}

// FinalAnswers returns, per order, the last answered attempt of kind k.
func FinalAnswers(r *Session, k OpKind) map[int64]*Attempt {
	out := map[int64]*Attempt{}
	for _, a := range r.Src.Attempts() { // in id order: retries come later
		if a.Kind == k && a.answered {
			out[a.OrderID] = a
		}
	}
	return out
}

func (lifecycle) Checks(r *Session, f *Facts) []Check {
	return []Check{CheckI6(r, f), CheckI7(r, f, nil)}
}

// CheckI6: what the payer and the canceller were told is what the rows say:
// a 200 PAID is a PAID row with our trade number (paid is final), a 409
// ORDER_CLOSED a cancelled one (a cancelled order is never paid), a 200
// CANCELLED a USER cancel, a 409 NOT_PENDING a timeout that won the race.
// No row is PAID without a payment the provider was told succeeded.
func CheckI6(r *Session, f *Facts) Check {
	pays, cancels := FinalAnswers(r, OpPay), FinalAnswers(r, OpCancel)
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
		case a.Status == 200 && a.gotStatus == "PAID":
			paid++
			if o.Status != "PAID" || o.tradeNo != fmt.Sprintf("lt-%d", id) {
				bad(id, "answered PAID but row is "+o.Status)
			}
		case a.Status == 409 && a.Code == "ORDER_CLOSED":
			closed++
			if o.Status != "CANCELLED" {
				bad(id, "answered ORDER_CLOSED but row is "+o.Status)
			}
		case a.Retryable():
			noAnswer++
		default:
			bad(id, fmt.Sprintf("payment answered %d %s", a.Status, a.Code))
		}
	}
	for id, a := range cancels {
		o := f.byID[id]
		switch {
		case o == nil:
			bad(id, "cancelled but has no row")
		case a.Status == 200 && a.gotStatus == "CANCELLED":
			userCancelled++
			if o.Status != "CANCELLED" || o.Reason != "USER" {
				bad(id, fmt.Sprintf("answered CANCELLED but row is %s %s", o.Status, o.Reason))
			}
		case a.Status == 409 && a.Code == "NOT_PENDING":
			lostRace++
			if o.Status != "CANCELLED" || o.Reason != "TIMEOUT" {
				bad(id, fmt.Sprintf("answered NOT_PENDING but row is %s %s", o.Status, o.Reason))
			}
		case a.Retryable():
			noAnswer++
		default:
			bad(id, fmt.Sprintf("cancel answered %d %s", a.Status, a.Code))
		}
	}
	for _, o := range f.Rows {
		if a := pays[o.ID]; o.Status == "PAID" && (a == nil || a.Status != 200) {
			bad(o.ID, "is PAID without a successful callback")
		}
	}
	detail := fmt.Sprintf("%d payments: %d PAID, %d ORDER_CLOSED (timer won); %d cancels: %d CANCELLED, "+
		"%d NOT_PENDING (timer won); %d without a final answer; %d contradicted by the rows",
		len(pays), paid, closed, len(cancels), userCancelled, lostRace, noAnswer, wrong)
	if len(examples) > 0 {
		detail += " (" + strings.Join(examples, "; ") + ")"
	}
	return Check{ID: "I6", Name: "paid is final", Pass: wrong == 0 && noAnswer == 0, Detail: detail}
}

// Outages tells CheckI7 when a part the payment timers need (a worker,
// NATS, PostgreSQL) was down: an order that expired then is judged by the
// sweeper's bound after the part was back, not by the 1 s p99.
type Outages struct {
	// DownAt reports whether a part was down at t, and when it was back.
	DownAt func(t time.Time) (back time.Time, ok bool)
	// Bound is the lateness allowed after the part was back.
	Bound time.Duration
	// Since places a time on the run's clock (seconds) for the detail.
	Since func(time.Time) float64
}

// CheckI7: every unpaid order is closed: CANCELLED with USER when its buyer
// was told so, else TIMEOUT, never before expire_at, and p99 of the
// lateness (cancelled_at − expire_at, both PostgreSQL/Redis server clocks
// on one machine) at most one second. With outages (the chaos drill), an
// order that expired while its timer path was down is instead cancelled
// within out.Bound of that part being back.
func CheckI7(r *Session, f *Facts, out *Outages) Check {
	userOK := map[int64]bool{}
	for id, a := range FinalAnswers(r, OpCancel) {
		userOK[id] = a.Status == 200
	}
	var onTime []time.Duration
	var lateFrom, lateTo time.Time // expiry range of the on-time group's orders later than 1 s
	var open, early, wrongReason, disturbed, tooLate int
	var worstDisturbed time.Duration
	for _, o := range f.Rows {
		switch {
		case o.Status == "PAID":
		case o.Status != "CANCELLED" || o.CancelledAt == nil:
			open++
		case o.Reason == "USER":
			if !userOK[o.ID] {
				wrongReason++
			}
		case o.Reason == "TIMEOUT":
			d := o.CancelledAt.Sub(o.ExpireAt)
			if d < 0 {
				early++
			}
			if out != nil {
				if back, ok := out.DownAt(o.ExpireAt); ok {
					disturbed++
					late := o.CancelledAt.Sub(MaxTime(o.ExpireAt, back))
					worstDisturbed = max(worstDisturbed, late)
					if late > out.Bound {
						tooLate++
					}
					continue
				}
			}
			onTime = append(onTime, d)
			if d > time.Second {
				if lateFrom.IsZero() || o.ExpireAt.Before(lateFrom) {
					lateFrom = o.ExpireAt
				}
				lateTo = MaxTime(lateTo, o.ExpireAt)
			}
		default:
			wrongReason++
		}
	}
	slices.Sort(onTime)
	q := func(p float64) time.Duration {
		if len(onTime) == 0 {
			return 0
		}
		return onTime[min(len(onTime)-1, int(p*float64(len(onTime))))]
	}
	p99 := q(0.99)
	pass := open == 0 && early == 0 && wrongReason == 0 && p99 <= time.Second && tooLate == 0
	if out == nil {
		return Check{ID: "I7", Name: "timeliness", Pass: pass,
			Detail: fmt.Sprintf("%d timed out: lateness p50 %s p99 %s max %s (p99 ≤ 1s), %d early; "+
				"%d unpaid orders still open, %d with a reason nobody asked for",
				len(onTime), RoundDur(q(0.5)), RoundDur(p99), RoundDur(q(1)), early, open, wrongReason)}
	}
	lateNote := ""
	if !lateFrom.IsZero() {
		lateNote = fmt.Sprintf(" (those later than 1s expired %.1fs–%.1fs)", out.Since(lateFrom), out.Since(lateTo))
	}
	return Check{ID: "I7", Name: "timeliness", Pass: pass,
		Detail: fmt.Sprintf("%d timed out with timers up: lateness p50 %s p99 %s max %s (p99 ≤ 1s)%s; "+
			"%d expired while a worker/NATS/PostgreSQL was down: worst %s after it was back (≤ %s), %d later; "+
			"%d early, %d unpaid still open, %d with a reason nobody asked for",
			len(onTime), RoundDur(q(0.5)), RoundDur(p99), RoundDur(q(1)), lateNote, disturbed, RoundDur(worstDisturbed),
			out.Bound, tooLate, early, open, wrongReason)}
}
