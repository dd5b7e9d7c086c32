package chaos

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/seckill/seckill/loadtest/scenario"
)

// chaosEval is the run judged after the drain: the rows, the balancer's log,
// the checkpoints and the probes, cut per fault.
type chaosEval struct {
	cr       *chaosRun
	rows     map[int64]*chaosRow
	byAct    map[int64][]*chaosRow
	byItem   map[int64][]*chaosRow
	hops     []hop
	acceptAt map[int64]time.Time // the load's orders: first 202, at the balancer
	probes   []probeVerdict
	devs     [][]*deviation // per snapshot, per activity (nil: snapshot failed)
	stale    []*deviation   // the first read of the restarted Redis
	lostLua  []*chaosRow    // rows whose buy's Redis writes the restart lost
	stranded []*chaosRow    // cancelled rows whose buyer still holds their quota in Redis
	figures  []faultFigures
}

// faultFigures are one fault's columns of the table.
type faultFigures struct {
	f                    *fault
	accepted             int            // the load's 202s within ±window
	errs                 map[string]int // buy answers ≥ 500 (or 499, client gone) within ±window, by status
	followUpErrs         map[string]int // pay/cancel answers ≥ 500 from window before the fault to window after it was back
	lost                 int            // 202s of the fault's segment without a row (load and probes)
	oversold             int64          // its probe's units held beyond stock at the worst instant
	doubled, stranded    int64          // change of the checkpoint deviation across the fault
	deviationKnown       bool
	down, recovery       time.Duration
	recovered            bool
	recoveryPath         string
	after503, afterOther int // Redis: buy answers between Redis back and the first 202 (cluster: the load's)

	// Payment timeouts of orders expiring in the fault's segment while the
	// timers were up (I7's on-time group): how many, how many cancelled more
	// than a second late, and the worst lateness; I7 judges them, this says
	// which fault they belong to.
	timeouts, lateTimeouts int
	lateNo202              int // of the late: orders no buyer was answered 202 for (a 503'd buy the reconciler persisted)
	worstTimeout           time.Duration
	lateFrom, lateTo       time.Time // expiry range of the late ones
}

// evaluate reads the rows and Redis and computes every figure.
func (cr *chaosRun) evaluate(ctx context.Context) (*chaosEval, error) {
	ev := &chaosEval{cr: cr, byAct: map[int64][]*chaosRow{}, byItem: map[int64][]*chaosRow{},
		hops: cr.lb.log(), acceptAt: map[int64]time.Time{}}
	var err error
	if ev.rows, err = cr.allRows(ctx); err != nil {
		return nil, fmt.Errorf("verify: postgres: %w", err)
	}
	for _, o := range ev.rows {
		ev.byAct[o.aid] = append(ev.byAct[o.aid], o)
		ev.byItem[o.iid] = append(ev.byItem[o.iid], o)
	}
	hopAt := map[int]time.Time{}
	for _, h := range ev.hops {
		if h.attempt >= 0 && h.status == 202 {
			hopAt[h.attempt] = h.at
		}
	}
	for _, a := range cr.r.Src.Attempts() {
		if a.Kind != scenario.OpBuy || a.Status != 202 || a.GotOrder == 0 {
			continue
		}
		if t, ok := hopAt[a.ID]; ok {
			if prev, seen := ev.acceptAt[a.GotOrder]; !seen || t.Before(prev) {
				ev.acceptAt[a.GotOrder] = t
			}
		}
	}
	for _, p := range cr.probes {
		ev.probes = append(ev.probes, p.verdict(ev.byAct, cr.cfg.ProbeStock))
	}
	acts := cr.activities()
	stockOf := func(i int) int64 {
		if i == 0 {
			return cr.cfg.Load.Stock
		}
		return cr.cfg.ProbeStock
	}
	devsOf := func(s *snapshot) []*deviation {
		if s == nil || s.err != nil {
			return nil
		}
		out := make([]*deviation, len(acts))
		for i, a := range acts {
			if it := s.item(a.ItemID); it != nil {
				d := deviationOf(s, it, ev.byItem, ev.rows, stockOf(i))
				out[i] = &d
			}
		}
		return out
	}
	for _, s := range cr.snaps {
		ev.devs = append(ev.devs, devsOf(s))
	}
	if f := cr.fault(faultRedis); f != nil {
		ev.stale = devsOf(f.stale)
	}
	if ev.lostLua, err = cr.lostRedisWrites(ctx, ev.rows); err != nil {
		return nil, fmt.Errorf("verify: redis: %w", err)
	}
	if ev.stranded, err = cr.strandedReturns(ctx, ev.byAct); err != nil {
		return nil, fmt.Errorf("verify: redis: %w", err)
	}
	for i, f := range cr.faults {
		ev.figures = append(ev.figures, ev.figuresOf(i, f))
	}
	return ev, nil
}

// fault returns the run's fault of kind k, nil if it was never scheduled.
func (cr *chaosRun) fault(k faultKind) *fault {
	for _, f := range cr.faults {
		if f.kind == k {
			return f
		}
	}
	return nil
}

// figuresOf computes fault i's row of the table.
func (ev *chaosEval) figuresOf(i int, f *fault) faultFigures {
	cr, w := ev.cr, ev.cr.cfg.Window
	ff := faultFigures{f: f, errs: map[string]int{}, followUpErrs: map[string]int{}}
	at := f.at
	if at.IsZero() {
		at = f.due
	}
	for _, t := range ev.acceptAt {
		if !t.Before(at.Add(-w)) && !t.After(at.Add(w)) {
			ff.accepted++
		}
	}
	until := scenario.MaxTime(at, f.back).Add(w)
	for _, h := range ev.hops {
		failed := h.status >= 500 || h.status == 499
		switch {
		case !failed || h.at.Before(at.Add(-w)):
		case h.kind == scenario.OpBuy && !h.at.After(at.Add(w)):
			ff.errs[strconv.Itoa(h.status)]++
		case (h.kind == scenario.OpPay || h.kind == scenario.OpCancel) && !h.at.After(until):
			ff.followUpErrs[h.kind.String()+" "+strconv.Itoa(h.status)]++
		}
	}
	// Lost 202s of the fault's segment: from window before it to window before the next.
	from, to := at.Add(-w), time.Time{}
	if i == 0 {
		from = time.Time{}
	}
	if i+1 < len(cr.faults) && !cr.faults[i+1].at.IsZero() {
		to = cr.faults[i+1].at.Add(-w)
	}
	in := func(t time.Time) bool { return !t.Before(from) && (to.IsZero() || t.Before(to)) }
	for id := range cr.r.Accepted {
		if t, ok := ev.acceptAt[id]; ok && in(t) && ev.rows[id] == nil {
			ff.lost++
		}
	}
	for _, o := range ev.rows {
		if o.reason == nil || *o.reason != "TIMEOUT" || o.cancelledAt == nil || !in(o.expireAt) {
			continue
		}
		if _, down := cr.timersDownAt(o.expireAt); down {
			continue // I7 judges it against the part's return, not its expiry
		}
		ff.timeouts++
		late := o.cancelledAt.Sub(o.expireAt)
		if late > time.Second {
			ff.lateTimeouts++
			if !ev.got202(o) {
				ff.lateNo202++
			}
			if ff.lateFrom.IsZero() || o.expireAt.Before(ff.lateFrom) {
				ff.lateFrom = o.expireAt
			}
			ff.lateTo = scenario.MaxTime(ff.lateTo, o.expireAt)
		}
		ff.worstTimeout = max(ff.worstTimeout, late)
	}
	for _, p := range cr.probes {
		p.mu.Lock()
		for id, t := range p.accepted {
			if in(t) && ev.rows[id] == nil {
				ff.lost++
			}
		}
		p.mu.Unlock()
	}
	if i < len(ev.probes) {
		ff.oversold = max(0, ev.probes[i].maxLive-cr.cfg.ProbeStock)
	}
	if i+1 < len(ev.devs) && ev.devs[i] != nil && ev.devs[i+1] != nil {
		ff.deviationKnown = true
		for k := range ev.devs[i] {
			if ev.devs[i][k] == nil || ev.devs[i+1][k] == nil {
				ff.deviationKnown = false
				continue
			}
			switch d := ev.devs[i+1][k].d - ev.devs[i][k].d; {
			case d > 0:
				ff.doubled += d
			case d < 0:
				ff.stranded -= d
			}
		}
	}
	if !f.back.IsZero() {
		ff.down = f.back.Sub(f.at)
	}
	ev.recovery(&ff)
	return ff
}

// recovery is the time from the fault to the first success on the path it
// broke, once the part was back: a 202 through the killed gateway; the
// killed worker ready; a 202 after NATS or Redis is back; a payment or
// cancel answered 200 after PostgreSQL is back.
func (ev *chaosEval) recovery(ff *faultFigures) {
	f := ff.f
	if f.back.IsZero() {
		ff.recoveryPath = "never back"
		return
	}
	match := func(h hop) bool { return h.kind == scenario.OpBuy && h.status == 202 }
	switch f.kind {
	case faultGateway:
		ff.recoveryPath = "first 202 via gateway-1"
		match = func(h hop) bool { return h.kind == scenario.OpBuy && h.status == 202 && h.backend == 0 }
	case faultWorker:
		ff.recoveryPath = "worker-1 ready"
		ff.recovery, ff.recovered = ff.down, true
		return
	case faultNATS, faultRedis:
		ff.recoveryPath = "first 202 after restart"
	case faultPG:
		ff.recoveryPath = "first pay/cancel 200"
		match = func(h hop) bool { return (h.kind == scenario.OpPay || h.kind == scenario.OpCancel) && h.status == 200 }
	case faultRedisKill, faultRedisPause:
		// The load's item is on the shard failed over; the probes may not be.
		ff.recoveryPath = "first load 202 after failover"
		match = func(h hop) bool { return h.kind == scenario.OpBuy && h.status == 202 && h.attempt >= 0 }
	case faultRedisRejoin:
		ff.recoveryPath = "first load 202 after rejoin"
		match = func(h hop) bool { return h.kind == scenario.OpBuy && h.status == 202 && h.attempt >= 0 }
	case faultNATSNode:
		// The other nodes elect a leader while the killed one is down, so
		// buys come back before it does: the end of the longest stall.
		ff.recoveryPath = "end of longest 202 stall"
		ff.recovery, ff.recovered = ev.stallEnd(f.at, f.back.Add(ev.cr.cfg.Window)), true
		return
	}
	for _, h := range ev.hops {
		if h.at.Before(f.back) {
			continue
		}
		if match(h) {
			ff.recovery, ff.recovered = h.at.Sub(f.at), true
			return
		}
		if h.kind == scenario.OpBuy && (f.kind == faultRedis || (f.kind != faultRedisRejoin && f.kind.redisShard() && h.attempt >= 0)) {
			if h.status == 503 {
				ff.after503++
			} else {
				ff.afterOther++
			}
		}
	}
}

// stallEnd is when buys flowed again after a fault at from: among the load's
// 202s from the last one before from until to, the end of the longest gap
// between two in a row, as a duration since from (0 when there was no gap
// after from).
func (ev *chaosEval) stallEnd(from, to time.Time) time.Duration {
	prev := time.Time{}
	var end time.Time
	var longest time.Duration
	for _, h := range ev.hops {
		if h.kind != scenario.OpBuy || h.status != 202 || h.attempt < 0 {
			continue
		}
		if h.at.Before(from) {
			prev = h.at
			continue
		}
		if h.at.After(to) {
			break
		}
		if prev.IsZero() {
			prev = from
		}
		if g := h.at.Sub(prev); g > longest {
			longest, end = g, h.at
		}
		prev = h.at
	}
	if end.IsZero() {
		return 0
	}
	return end.Sub(from)
}

// got202 reports whether a buyer was answered 202 for order o.
func (ev *chaosEval) got202(o *chaosRow) bool {
	if _, ok := ev.cr.r.Accepted[o.id]; ok {
		return true
	}
	for _, p := range ev.cr.probes {
		if p.act.ID == o.aid {
			p.mu.Lock()
			_, ok := p.accepted[o.id]
			p.mu.Unlock()
			return ok
		}
	}
	return false
}
