package chaos

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/seckill/seckill/loadtest/scenario"
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

func (*chaosLoad) About() string {
	return "own Redis/NATS/PostgreSQL (single or clusters), gateways and workers; kill and restart each part under load"
}

// Defaults: the chaos flags set everything; see chaosDefaults.
func (*chaosLoad) Defaults(*scenario.Config) {}

// chaosKey is buyer b's one Idempotency-Key (prefix "ck" for the load, "cp"
// for the probes).
func chaosKey(prefix string, b int) string { return fmt.Sprintf("%s-%d", prefix, b) }

// Plan is one buy per buyer at the rate, each with the buyer's key.
func (*chaosLoad) Plan(r *scenario.Session) []*scenario.Attempt {
	out := scenario.PlanOnePerRequest(r)
	for _, a := range out {
		a.Key = chaosKey("ck", a.Buyer)
	}
	return out
}

// React gives each new order its fate as lifecycle does, and resends
// whatever got no final answer: buys with their key, payments and cancels.
func (c *chaosLoad) React(r *scenario.Session, a *scenario.Attempt, now time.Time) []*scenario.Attempt {
	switch {
	case a.Kind == scenario.OpBuy && a.Status == 202 && a.GotOrder != 0:
		if c.fated[a.GotOrder] {
			return nil // a resend's 202 for an order that has its fate
		}
		c.fated[a.GotOrder] = true
		due := now.Add(time.Duration(r.RNG.Float64() * float64(r.Config.PayTimeout) / 2))
		switch x := r.RNG.Float64(); {
		case x < r.Config.PayShare:
			// The body lifecycle's checkI6 expects: trade number lt-<order>.
			body := fmt.Appendf(nil, `{"order_id":"%d","trade_no":"lt-%d","amount_cents":%d,"paid_at":"%s"}`,
				a.GotOrder, a.GotOrder, r.Act.PriceCents, now.UTC().Format(time.RFC3339Nano))
			return []*scenario.Attempt{{Kind: scenario.OpPay, Buyer: a.Buyer, OrderID: a.GotOrder, Body: body, Due: due}}
		case x < r.Config.PayShare+r.Config.CancelShare:
			return []*scenario.Attempt{{Kind: scenario.OpCancel, Buyer: a.Buyer, OrderID: a.GotOrder, Due: due}}
		}
	case a.Kind == scenario.OpBuy && a.Retryable() && a.Retries < chaosBuyRetries:
		return []*scenario.Attempt{a.Retry(now, scenario.BuyBackoff<<a.Retries, scenario.BuyMaxWait)}
	case a.Kind != scenario.OpBuy && a.Retryable() && a.Retries < chaosFollowUpTrials:
		return []*scenario.Attempt{a.Retry(now, followUpBackoffAt(a.Retries), chaosFollowUpMax)}
	}
	return nil
}

// Tail: half a payment window for the last follow-ups, and their retries
// through an outage.
func (*chaosLoad) Tail(c scenario.Config) time.Duration {
	return c.PayTimeout + c.Timeout + 60*time.Second
}

// Settled: every order persisted and closed (paid or cancelled), every
// return finished.
func (*chaosLoad) Settled(r *scenario.Session, st scenario.ItemStats) bool {
	return scenario.DrainedOrders(r, st) && st.Pending == 0
}

// Checks are I6 as in lifecycle, and I7 judged with the outages in mind.
func (c *chaosLoad) Checks(r *scenario.Session, f *scenario.Facts) []scenario.Check {
	return []scenario.Check{scenario.CheckI6(r, f), scenario.CheckI7(r, f, &scenario.Outages{DownAt: c.run.timersDownAt,
		Bound: c.run.cfg.SweepInterval + c.run.cfg.SweepGrace + time.Second, Since: c.run.since})}
}
