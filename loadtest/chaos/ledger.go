package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/scenario"
	"github.com/seckill/seckill/stock"
)

// A checkpoint proves conservation (I3) while traffic flows, exactly.
//
// One script per item reads, atomically, Redis's available stock, its
// reservations and its restocked set, together with Redis's clock. Every
// order the buy script accepted before that instant has a created_ms
// (Redis's clock, written by the same script on the same server) before it,
// so once the run is over and every order is a row, the rows tell what each
// unit was doing at the instant:
//
//	deviation = available + reserved (reservation, no row) + live rows (PENDING/PAID)
//	          + returning (CANCELLED, not yet in the restocked set) − stock
//
// A cancel, payment or return after the instant does not change the sum (a
// live row cancelled later is counted as returning; its marker is not in the
// snapshot). The deviation is 0 when every unit is accounted for once;
// positive means Redis offers units it should not (sold twice, or returned
// twice), negative means units stranded. An item's keys share one hash tag,
// so on a Redis Cluster its script runs on the master of its shard, and
// each item has its own instant.

// snapshotScript reads one item and the server's clock in one step.
// KEYS: item hash, reservations, restocked set. Reply: seconds, microseconds,
// HMGET item stock fenced, HGETALL reservations, SMEMBERS restocked.
var snapshotScript = redis.NewScript(`
local t = redis.call('TIME')
return {t[1], t[2], redis.call('HMGET', KEYS[1], 'stock', 'fenced'), redis.call('HGETALL', KEYS[2]), redis.call('SMEMBERS', KEYS[3])}
`)

// snapshot is one checkpoint's read of Redis.
type snapshot struct {
	label string
	at    time.Time // local clock, when the read returned
	items []itemSnap
	err   error
}

type itemSnap struct {
	aid, iid  int64
	ms        int64 // Redis's clock at the read, Unix ms
	exists    bool
	fenced    bool
	available int64
	resv      map[int64]int64 // order id → quantity
	restocked map[int64]bool
}

// item returns the snapshot of item iid, nil if it was not read.
func (s *snapshot) item(iid int64) *itemSnap {
	if s == nil {
		return nil
	}
	for i := range s.items {
		if s.items[i].iid == iid {
			return &s.items[i]
		}
	}
	return nil
}

// unsettled reports whether the snapshot failed or caught an item fenced
// (its state is then not the one the deviation is about).
func (s *snapshot) unsettled() bool {
	if s.err != nil {
		return true
	}
	for _, it := range s.items {
		if it.fenced || !it.exists {
			return true
		}
	}
	return false
}

// checkpoint reads Redis; with settle > 0 it retries for up to settle while
// the read fails or an item is fenced, so the checkpoint describes rebuilt state.
func (cr *chaosRun) checkpoint(ctx context.Context, label string, settle time.Duration) *snapshot {
	deadline := time.Now().Add(settle)
	for {
		s := cr.readSnapshot(ctx, label)
		if !s.unsettled() || time.Now().After(deadline) || sleepCtx(ctx, 200*time.Millisecond) != nil {
			if s.err != nil {
				cr.logf("checkpoint %q: %v", label, s.err)
			}
			return s
		}
	}
}

// readSnapshot reads every item, each atomically with its server's clock
// (see the top of the file), in one pipeline.
func (cr *chaosRun) readSnapshot(ctx context.Context, label string) *snapshot {
	s := &snapshot{label: label}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	keys := stock.Keys{Prefix: cr.cfg.Load.RedisPrefix}
	acts := cr.activities()
	cmds := make([]*redis.Cmd, len(acts))
	_, err := cr.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, a := range acts {
			cmds[i] = snapshotScript.Eval(ctx, p, []string{keys.Item(a.ID, a.ItemID),
				keys.Reservations(a.ID, a.ItemID), keys.Restocked(a.ID, a.ItemID)})
		}
		return nil
	})
	s.at = time.Now()
	if err != nil {
		s.err = err
		return s
	}
	for i, a := range acts {
		it := itemSnap{aid: a.ID, iid: a.ItemID, resv: map[int64]int64{}, restocked: map[int64]bool{}}
		if err := it.parse(cmds[i].Val()); err != nil {
			s.err = fmt.Errorf("item %d: %w", a.ItemID, err)
			return s
		}
		s.items = append(s.items, it)
	}
	return s
}

// parse reads snapshotScript's reply into it.
func (it *itemSnap) parse(v any) error {
	r, ok := v.([]any)
	if !ok || len(r) != 5 {
		return fmt.Errorf("snapshot reply %v unreadable", v)
	}
	sec, _ := strconv.ParseInt(fmt.Sprint(r[0]), 10, 64)
	usec, _ := strconv.ParseInt(fmt.Sprint(r[1]), 10, 64)
	it.ms = sec*1000 + usec/1000
	item, _ := r[2].([]any)
	if len(item) != 2 {
		return fmt.Errorf("item fields %v unreadable", r[2])
	}
	if sv, ok := item[0].(string); ok {
		it.exists = true
		it.available, _ = strconv.ParseInt(sv, 10, 64)
	}
	it.fenced = item[1] != nil
	resv, _ := r[3].([]any)
	for k := 0; k+1 < len(resv); k += 2 {
		id, _ := resv[k].(string)
		js, _ := resv[k+1].(string)
		var rv stock.Reservation
		oid, err := strconv.ParseInt(id, 10, 64)
		if err != nil || json.Unmarshal([]byte(js), &rv) != nil {
			return fmt.Errorf("reservation %q=%q unreadable", id, js)
		}
		it.resv[oid] = rv.Quantity
	}
	marks, _ := r[4].([]any)
	for _, m := range marks {
		oid, _ := strconv.ParseInt(fmt.Sprint(m), 10, 64)
		it.restocked[oid] = true
	}
	return nil
}

// fenced reads whether the item is fenced now; ok is false when Redis did not answer.
func (cr *chaosRun) fenced(ctx context.Context, a scenario.Activity) (fenced, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	keys := stock.Keys{Prefix: cr.cfg.Load.RedisPrefix}
	v, err := cr.rdb.HMGet(ctx, keys.Item(a.ID, a.ItemID), "stock", "fenced").Result()
	if err != nil {
		return false, false
	}
	return v[1] != nil, v[0] != nil
}

// chaosRow is an order row of any of the run's items.
type chaosRow struct {
	id, aid, iid, user, qty int64
	status                  string
	createdMs               int64
	cancelledAt             *time.Time
	expireAt                time.Time
	reason                  *string // cancel_reason: TIMEOUT or USER
}

// allRows reads every order of the run's own database.
func (cr *chaosRun) allRows(ctx context.Context) (map[int64]*chaosRow, error) {
	conn, err := pgx.Connect(ctx, cr.cl.dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT id, activity_id, item_id, user_id, quantity, status,
		(extract(epoch FROM created_at) * 1000)::bigint, cancelled_at, expire_at, cancel_reason FROM orders`)
	if err != nil {
		return nil, err
	}
	out := map[int64]*chaosRow{}
	var o chaosRow
	_, err = pgx.ForEachRow(rows, []any{&o.id, &o.aid, &o.iid, &o.user, &o.qty, &o.status, &o.createdMs, &o.cancelledAt, &o.expireAt, &o.reason},
		func() error {
			c := o
			out[o.id] = &c
			o = chaosRow{}
			return nil
		})
	return out, err
}

// deviation is the checkpoint's equation for one item (see above), with
// its terms for the report.
type deviation struct {
	d, available, reserved, live, returning, stock int64
}

func (d deviation) String() string {
	return fmt.Sprintf("%+d (available %d + reserved %d + live %d + returning %d − stock %d)",
		d.d, d.available, d.reserved, d.live, d.returning, d.stock)
}

// deviationOf evaluates item it of snapshot s against the final rows.
func deviationOf(s *snapshot, it *itemSnap, byItem map[int64][]*chaosRow, rows map[int64]*chaosRow, stockN int64) deviation {
	dv := deviation{available: it.available, stock: stockN}
	for id, q := range it.resv {
		if rows[id] == nil {
			dv.reserved += q
		}
	}
	for _, o := range byItem[it.iid] {
		_, reserved := it.resv[o.id]
		if o.createdMs > it.ms || (o.createdMs == it.ms && !reserved) {
			continue // accepted after the read (same millisecond: its reservation tells)
		}
		switch {
		case o.status == "PENDING" || o.status == "PAID":
			dv.live += o.qty
		case o.status == "CANCELLED" && !it.restocked[o.id]:
			dv.returning += o.qty
		}
	}
	dv.d = dv.available + dv.reserved + dv.live + dv.returning - dv.stock
	return dv
}
