package chaos

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/scenario"
	"github.com/seckill/seckill/stock"
)

// lostRedisWrites finds the rows whose buy's Redis writes are gone: every
// accepted buy stored its Idempotency-Key → order id in the same script
// that took the unit, and nothing deletes that key within its 24 h, so a
// row whose key is missing (or names another order) was accepted by writes
// a restarted Redis no longer has.
func (cr *chaosRun) lostRedisWrites(ctx context.Context, rows map[int64]*chaosRow) ([]*chaosRow, error) {
	keys := stock.Keys{Prefix: cr.cfg.Load.RedisPrefix}
	keyOf := func(o *chaosRow) string {
		if o.aid == cr.r.Act.ID {
			return keys.Idempotency(o.aid, o.iid, o.user, chaosKey("ck", int(o.user-cr.r.UserBase)))
		}
		for _, p := range cr.probes {
			if p.act.ID == o.aid {
				return keys.Idempotency(o.aid, o.iid, o.user, chaosKey("cp", int(o.user-p.base)))
			}
		}
		return ""
	}
	var all []*chaosRow
	for _, o := range rows {
		if keyOf(o) != "" {
			all = append(all, o)
		}
	}
	var lost []*chaosRow
	for start := 0; start < len(all); start += 2000 {
		batch := all[start:min(len(all), start+2000)]
		pipe := cr.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(batch))
		for i, o := range batch {
			cmds[i] = pipe.Get(ctx, keyOf(o))
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, err
		}
		for i, o := range batch {
			if cmds[i].Val() != strconv.FormatInt(o.id, 10) {
				lost = append(lost, o)
			}
		}
	}
	return lost, nil
}

// strandedReturns finds cancelled orders whose return did not stick: their
// buyer holds no live row, yet the buyers hash still counts the unit (every
// buyer has one order, so a count above the live rows names the order).
func (cr *chaosRun) strandedReturns(ctx context.Context, byAct map[int64][]*chaosRow) ([]*chaosRow, error) {
	keys := stock.Keys{Prefix: cr.cfg.Load.RedisPrefix}
	var out []*chaosRow
	for _, a := range cr.activities() {
		held, err := cr.rdb.HGetAll(ctx, keys.Buyers(a.ID, a.ItemID)).Result()
		if err != nil {
			return nil, err
		}
		live := map[int64]int64{}
		for _, o := range byAct[a.ID] {
			if o.status == "PENDING" || o.status == "PAID" {
				live[o.user] += o.qty
			}
		}
		for _, o := range byAct[a.ID] {
			n, _ := strconv.ParseInt(held[strconv.FormatInt(o.user, 10)], 10, 64)
			if o.status == "CANCELLED" && n > live[o.user] {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// Checks are the chaos run's own verdicts, after I1–I7.
func (ev *chaosEval) Checks() []scenario.Check {
	cr := ev.cr
	lost := 0
	for id := range cr.r.Accepted {
		if ev.rows[id] == nil {
			lost++
		}
	}
	var probeLost int
	var worst []string
	overs := 0
	for i, v := range ev.probes {
		probeLost += v.lost
		if v.maxLive > cr.cfg.ProbeStock {
			overs++
		}
		worst = append(worst, fmt.Sprintf("%d:%d/%d", i+1, v.maxLive, cr.cfg.ProbeStock))
	}
	var nonzero []string
	checked := 0
	for si, devs := range ev.devs {
		if devs == nil {
			nonzero = append(nonzero, cr.snaps[si].label+": not read")
			continue
		}
		for k, d := range devs {
			checked++
			if d != nil && d.d != 0 {
				nonzero = append(nonzero, fmt.Sprintf("%s, item %d: %s", cr.snaps[si].label, cr.activities()[k].ItemID, d))
			}
		}
	}
	var notBack []string
	for _, ff := range ev.figures {
		if ff.f.err != nil || !ff.recovered {
			notBack = append(notBack, fmt.Sprintf("%s (%s; %v)", ff.f.name, ff.recoveryPath, ff.f.err))
		}
	}
	if len(ev.figures) < len(cr.cfg.kinds()) {
		notBack = append(notBack, fmt.Sprintf("only %d of %d faults injected", len(ev.figures), len(cr.cfg.kinds())))
	}
	c3 := fmt.Sprintf("%d checkpoints × %d items, every unit accounted for exactly once", len(ev.devs), len(cr.activities()))
	if len(nonzero) > 0 {
		c3 = strings.Join(nonzero, "; ")
	}
	c4 := "every fault injected, every part back, every path served again"
	if len(notBack) > 0 {
		c4 = strings.Join(notBack, "; ")
	}
	return []scenario.Check{
		{ID: "C1", Name: "no 202 lost", Pass: lost == 0 && probeLost == 0,
			Detail: fmt.Sprintf("%d load orders and %d probe orders answered 202 without a row", lost, probeLost)},
		{ID: "C2", Name: "no oversell on sell-outs", Pass: overs == 0,
			Detail: fmt.Sprintf("most units held at one instant per probe (fault:held/stock) %s", strings.Join(worst, " "))},
		{ID: "C3", Name: "conservation at checkpoints", Pass: len(nonzero) == 0 && checked > 0, Detail: c3},
		{ID: "C4", Name: "every part recovered", Pass: len(notBack) == 0, Detail: c4},
	}
}
