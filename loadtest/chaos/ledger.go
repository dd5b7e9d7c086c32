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
// One MULTI/EXEC reads, for every item, Redis's available stock, its
// reservations and its restocked set, together with Redis's clock. Every
// order the buy script accepted before that instant has a created_ms
// (Redis's clock, written by the same script) before it, so once the run is
// over and every order is a row, the rows tell what each unit was doing at
// the instant:
//
//	deviation = available + reserved (reservation, no row) + live rows (PENDING/PAID)
//	          + returning (CANCELLED, not yet in the restocked set) − stock
//
// A cancel, payment or return after the instant does not change the sum (a
// live row cancelled later is counted as returning; its marker is not in the
// snapshot). The deviation is 0 when every unit is accounted for once;
// positive means Redis offers units it should not (sold twice, or returned
// twice), negative means units stranded.

// snapshot is one checkpoint's read of Redis.
type snapshot struct {
	label string
	at    time.Time // local clock, when the read returned
	ms    int64     // Redis's clock, Unix ms
	items []itemSnap
	err   error
}

type itemSnap struct {
	aid, iid  int64
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

// readSnapshot is one MULTI/EXEC read of every item (see the top of the file).
func (cr *chaosRun) readSnapshot(ctx context.Context, label string) *snapshot {
	s := &snapshot{label: label}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	keys := stock.Keys{Prefix: cr.cfg.Load.RedisPrefix}
	acts := cr.activities()
	type cmds struct {
		item  *redis.SliceCmd
		resv  *redis.MapStringStringCmd
		marks *redis.StringSliceCmd
	}
	var tm *redis.TimeCmd
	cs := make([]cmds, len(acts))
	_, err := cr.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		tm = p.Time(ctx)
		for i, a := range acts {
			cs[i].item = p.HMGet(ctx, keys.Item(a.ID, a.ItemID), "stock", "fenced")
			cs[i].resv = p.HGetAll(ctx, keys.Reservations(a.ID, a.ItemID))
			cs[i].marks = p.SMembers(ctx, keys.Restocked(a.ID, a.ItemID))
		}
		return nil
	})
	s.at = time.Now()
	if err != nil {
		s.err = err
		return s
	}
	s.ms = tm.Val().UnixMilli()
	for i, a := range acts {
		it := itemSnap{aid: a.ID, iid: a.ItemID, resv: map[int64]int64{}, restocked: map[int64]bool{}}
		v := cs[i].item.Val()
		if sv, ok := v[0].(string); ok {
			it.exists = true
			it.available, _ = strconv.ParseInt(sv, 10, 64)
		}
		it.fenced = v[1] != nil
		for id, js := range cs[i].resv.Val() {
			var r stock.Reservation
			oid, err := strconv.ParseInt(id, 10, 64)
			if err != nil || json.Unmarshal([]byte(js), &r) != nil {
				s.err = fmt.Errorf("reservation %q=%q unreadable", id, js)
				return s
			}
			it.resv[oid] = r.Quantity
		}
		for _, m := range cs[i].marks.Val() {
			oid, _ := strconv.ParseInt(m, 10, 64)
			it.restocked[oid] = true
		}
		s.items = append(s.items, it)
	}
	return s
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
}

// allRows reads every order of the run's own database.
func (cr *chaosRun) allRows(ctx context.Context) (map[int64]*chaosRow, error) {
	conn, err := pgx.Connect(ctx, cr.cl.dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT id, activity_id, item_id, user_id, quantity, status,
		(extract(epoch FROM created_at) * 1000)::bigint, cancelled_at FROM orders`)
	if err != nil {
		return nil, err
	}
	out := map[int64]*chaosRow{}
	var o chaosRow
	_, err = pgx.ForEachRow(rows, []any{&o.id, &o.aid, &o.iid, &o.user, &o.qty, &o.status, &o.createdMs, &o.cancelledAt},
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
		if o.createdMs > s.ms || (o.createdMs == s.ms && !reserved) {
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
