package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// chaosLoad is the load of a chaos run: the lifecycle mix (a share of the
// accepted orders paid, a share cancelled, the rest left to time out) sold
// by buyers who behave like real clients: every buyer has one
// Idempotency-Key and resends on no answer, 5xx or 429, with backoff, so a
// gateway dying under a request or a store being down is retried rather than
// lost. It runs through the scenario machinery (source, attack, drain,
// verification) like the other scenarios, with the faults on the side.
type chaosLoad struct {
	run   *chaosRun
	fated map[int64]bool // orders given a fate (pay, cancel, time out); react only
}

// Retries: buys like the retry scenario (but more of them, as outages last
// seconds); payments and cancels keep trying through a PostgreSQL outage,
// backing off from 200 ms to 2 s (or the server's Retry-After) as a payment
// provider would.
const (
	chaosBuyRetries     = 6
	chaosFollowUpRetry  = 200 * time.Millisecond
	chaosFollowUpMax    = 2 * time.Second
	chaosFollowUpTrials = 60
)

// followUpBackoffAt is the wait before a follow-up's next send: exponential,
// capped, with jitter (half to all of it), so clients that failed together
// do not come back in one wave.
func followUpBackoffAt(retries int) time.Duration {
	d := min(chaosFollowUpRetry<<min(retries, 4), chaosFollowUpMax)
	return d/2 + rand.N(d/2+1)
}

func (*chaosLoad) about() string {
	return "own Redis/NATS/PostgreSQL, two gateways and workers; kill and restart each part under load"
}

// defaults: the chaos flags set everything; see chaosDefaults.
func (*chaosLoad) defaults(*Config) {}

// chaosKey is buyer b's one Idempotency-Key (prefix "ck" for the load, "cp"
// for the probes).
func chaosKey(prefix string, b int) string { return fmt.Sprintf("%s-%d", prefix, b) }

// plan is one buy per buyer at the rate, each with the buyer's key.
func (*chaosLoad) plan(r *session) []*attempt {
	out := planOnePerRequest(r)
	for _, a := range out {
		a.key = chaosKey("ck", a.buyer)
	}
	return out
}

// react gives each new order its fate as lifecycle does, and resends
// whatever got no final answer: buys with their key, payments and cancels.
func (c *chaosLoad) react(r *session, a *attempt, now time.Time) []*attempt {
	switch {
	case a.kind == opBuy && a.status == 202 && a.gotOrder != 0:
		if c.fated[a.gotOrder] {
			return nil // a resend's 202 for an order that has its fate
		}
		c.fated[a.gotOrder] = true
		due := now.Add(time.Duration(r.rng.Float64() * float64(r.cfg.PayTimeout) / 2))
		switch x := r.rng.Float64(); {
		case x < r.cfg.PayShare:
			// The body lifecycle's checkI6 expects: trade number lt-<order>.
			body := fmt.Appendf(nil, `{"order_id":"%d","trade_no":"lt-%d","amount_cents":%d,"paid_at":"%s"}`,
				a.gotOrder, a.gotOrder, r.act.PriceCents, now.UTC().Format(time.RFC3339Nano))
			return []*attempt{{kind: opPay, buyer: a.buyer, orderID: a.gotOrder, body: body, due: due}}
		case x < r.cfg.PayShare+r.cfg.CancelShare:
			return []*attempt{{kind: opCancel, buyer: a.buyer, orderID: a.gotOrder, due: due}}
		}
	case a.kind == opBuy && a.retryable() && a.retries < chaosBuyRetries:
		return []*attempt{a.retry(now, buyBackoff<<a.retries, buyMaxWait)}
	case a.kind != opBuy && a.retryable() && a.retries < chaosFollowUpTrials:
		return []*attempt{a.retry(now, followUpBackoffAt(a.retries), chaosFollowUpMax)}
	}
	return nil
}

// tail: half a payment window for the last follow-ups, and their retries
// through an outage.
func (*chaosLoad) tail(c Config) time.Duration { return c.PayTimeout + c.Timeout + 60*time.Second }

// settled: every order persisted and closed (paid or cancelled), every
// return finished.
func (*chaosLoad) settled(r *session, st itemStats) bool {
	return drainedOrders(r, st) && st.Pending == 0
}

// checks are I6 as in lifecycle, and I7 judged with the outages in mind.
func (c *chaosLoad) checks(r *session, f *facts) []check {
	return []check{checkI6(r, f), c.run.checkI7(r, f)}
}

// checkI7 is lifecycle's timeliness with the README's two clauses: an order
// that expired while its timer path was up is cancelled within 1 s (p99); one
// that expired while a part the timers need was down (a worker, NATS,
// PostgreSQL) is cancelled within one sweep interval (plus the sweeper's
// grace and a second of slack) of that part being back. None early, none open.
func (cr *chaosRun) checkI7(r *session, f *facts) check {
	userOK := map[int64]bool{}
	for id, a := range finalAnswers(r, opCancel) {
		userOK[id] = a.status == 200
	}
	var onTime []time.Duration
	var lateFrom, lateTo time.Time // expiry range of the on-time group's orders later than 1 s
	var open, early, wrongReason, disturbed, tooLate int
	var worstDisturbed time.Duration
	bound := cr.cfg.SweepInterval + cr.cfg.SweepGrace + time.Second
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
			if back, ok := cr.timersDownAt(o.expireAt); ok {
				disturbed++
				late := o.cancelledAt.Sub(maxTime(o.expireAt, back))
				worstDisturbed = max(worstDisturbed, late)
				if late > bound {
					tooLate++
				}
				continue
			}
			onTime = append(onTime, d)
			if d > time.Second {
				if lateFrom.IsZero() || o.expireAt.Before(lateFrom) {
					lateFrom = o.expireAt
				}
				lateTo = maxTime(lateTo, o.expireAt)
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
	lateNote := ""
	if !lateFrom.IsZero() {
		lateNote = fmt.Sprintf(" (those later than 1s expired %.1fs–%.1fs)", cr.since(lateFrom), cr.since(lateTo))
	}
	return check{id: "I7", name: "timeliness",
		pass: open == 0 && early == 0 && wrongReason == 0 && p99 <= time.Second && tooLate == 0,
		detail: fmt.Sprintf("%d timed out with timers up: lateness p50 %s p99 %s max %s (p99 ≤ 1s)%s; "+
			"%d expired while a worker/NATS/PostgreSQL was down: worst %s after it was back (≤ %s), %d later; "+
			"%d early, %d unpaid still open, %d with a reason nobody asked for",
			len(onTime), roundDur(q(0.5)), roundDur(p99), roundDur(q(1)), lateNote, disturbed, roundDur(worstDisturbed),
			bound, tooLate, early, open, wrongReason)}
}
