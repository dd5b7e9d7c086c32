package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock"
)

// check is one verdict of the verification.
type check struct {
	id     string // I1…I7 for the README's invariants, a letter for a scenario's own
	name   string
	pass   bool
	detail string // the numbers behind the verdict
}

// orderRow is one row of the orders table of the run's activity.
type orderRow struct {
	id, userID, itemID, qty int64
	status, reason          string
	createdAt, expireAt     time.Time
	paidAt, cancelledAt     *time.Time
	returned                bool
	tradeNo                 string
}

// facts are the run's end state, read straight from the stores the gateway
// uses (and its stats endpoint), independent of what the gateway answered.
type facts struct {
	stats     itemStats
	drainNote string

	stockTotal int64 // items.stock
	rows       []orderRow
	byID       map[int64]*orderRow
	live       map[int64]int64 // user → PENDING+PAID units
	liveUnits  int64
	pending    int64 // units
	paid       int64 // units
	users      int   // distinct users with a row
	overLimit  int64 // users above the limit, by SQL GROUP BY
	maxLive    int64 // most live units one user holds, by SQL

	redisExists    bool
	redisAvailable int64
	redisTotal     int64
	buyers         map[int64]int64 // the buyers hash: user → live units
	restocked      map[int64]bool  // order ids whose units went back
	reservations   int64           // entries left in the reservations hash
}

// gather reads the facts from PostgreSQL and Redis.
func (r *session) gather(ctx context.Context, st itemStats) (*facts, error) {
	f := &facts{stats: st, byID: map[int64]*orderRow{}, live: map[int64]int64{},
		buyers: map[int64]int64{}, restocked: map[int64]bool{}}
	if err := r.gatherSQL(ctx, f); err != nil {
		return nil, fmt.Errorf("verify: postgres: %w", err)
	}
	if err := r.gatherRedis(ctx, f); err != nil {
		return nil, fmt.Errorf("verify: redis: %w", err)
	}
	return f, nil
}

func (r *session) gatherSQL(ctx context.Context, f *facts) error {
	conn, err := pgx.Connect(ctx, r.cfg.PostgresDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.QueryRow(ctx, `SELECT stock FROM items WHERE id = $1 AND activity_id = $2`,
		r.act.ItemID, r.act.ID).Scan(&f.stockTotal); err != nil {
		return fmt.Errorf("item %d: %w", r.act.ItemID, err)
	}
	rows, err := conn.Query(ctx, `
		SELECT id, user_id, item_id, quantity, status, coalesce(cancel_reason, ''), created_at,
		       expire_at, paid_at, cancelled_at, stock_returned, coalesce(trade_no, '')
		FROM orders WHERE activity_id = $1`, r.act.ID)
	if err != nil {
		return err
	}
	var o orderRow
	_, err = pgx.ForEachRow(rows, []any{&o.id, &o.userID, &o.itemID, &o.qty, &o.status, &o.reason,
		&o.createdAt, &o.expireAt, &o.paidAt, &o.cancelledAt, &o.returned, &o.tradeNo}, func() error {
		f.rows = append(f.rows, o)
		o = orderRow{} // fresh time pointers for the next row's scan
		return nil
	})
	if err != nil {
		return err
	}
	users := map[int64]bool{}
	for i := range f.rows {
		o := &f.rows[i]
		f.byID[o.id] = o
		users[o.userID] = true
		switch o.status {
		case "PENDING":
			f.pending += o.qty
			f.live[o.userID] += o.qty
		case "PAID":
			f.paid += o.qty
			f.live[o.userID] += o.qty
		}
	}
	f.users = len(users)
	f.liveUnits = f.pending + f.paid
	// I5 is asked of PostgreSQL itself, as an operator would.
	return conn.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE units > $2), coalesce(max(units), 0)
		FROM (SELECT sum(quantity) AS units FROM orders
		      WHERE item_id = $1 AND status IN ('PENDING', 'PAID') GROUP BY user_id) per_user`,
		r.act.ItemID, r.cfg.Limit).Scan(&f.overLimit, &f.maxLive)
}

func (r *session) gatherRedis(ctx context.Context, f *facts) error {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: strings.Split(r.cfg.RedisAddr, ",")})
	defer rdb.Close()
	keys := stock.Keys{Prefix: r.cfg.RedisPrefix}
	aid, iid := r.act.ID, r.act.ItemID
	vals, err := rdb.HMGet(ctx, keys.Item(aid, iid), "stock", "total").Result()
	if err != nil {
		return err
	}
	if s, ok := vals[0].(string); ok {
		f.redisExists = true
		f.redisAvailable, _ = strconv.ParseInt(s, 10, 64)
		t, _ := vals[1].(string)
		f.redisTotal, _ = strconv.ParseInt(t, 10, 64)
	}
	buyers, err := rdb.HGetAll(ctx, keys.Buyers(aid, iid)).Result()
	if err != nil {
		return err
	}
	for u, v := range buyers {
		uid, err1 := strconv.ParseInt(u, 10, 64)
		n, err2 := strconv.ParseInt(v, 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("buyers hash entry %q=%q: %w", u, v, err)
		}
		f.buyers[uid] = n
	}
	restocked, err := rdb.SMembers(ctx, keys.Restocked(aid, iid)).Result()
	if err != nil {
		return err
	}
	for _, s := range restocked {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("restocked set member %q: %w", s, err)
		}
		f.restocked[id] = true
	}
	f.reservations, err = rdb.HLen(ctx, keys.Reservations(aid, iid)).Result()
	return err
}

// invariants are the README's I1–I5, which every scenario must keep.
func (r *session) invariants(f *facts) []check {
	return []check{r.checkI1(f), r.checkI2(f), r.checkI3(f), r.checkI4(f), r.checkI5(f)}
}

func (r *session) checkI1(f *facts) check {
	return check{id: "I1", name: "no oversell",
		pass: f.liveUnits <= f.stockTotal && f.stats.Pending+f.stats.Paid <= f.stats.StockTotal,
		detail: fmt.Sprintf("live units %d ≤ stock %d (pending %d, paid %d); stats pending+paid %d ≤ %d",
			f.liveUnits, f.stockTotal, f.pending, f.paid, f.stats.Pending+f.stats.Paid, f.stats.StockTotal)}
}

// checkI2: every 202 is one row of its buyer; a row without a 202 is only
// acceptable when its buyer got no clear answer (timeout, 5xx), where the
// order may well have been taken.
func (r *session) checkI2(f *facts) check {
	var missing, wrongOwner int
	for id, buyer := range r.accepted {
		o := f.byID[id]
		switch {
		case o == nil:
			missing++
		case o.userID != r.userID(buyer) || o.itemID != r.act.ItemID:
			wrongOwner++
		}
	}
	unclear := map[int64]bool{} // users with a buy answered by no response or 5xx
	for _, a := range r.src.attempts() {
		if a.kind == opBuy && a.answered && (a.status == 0 || a.status >= 500) {
			unclear[r.userID(a.buyer)] = true
		}
	}
	var explained, unexplained int
	for _, o := range f.rows {
		if _, ok := r.accepted[o.id]; ok {
			continue
		}
		if unclear[o.userID] {
			explained++
		} else {
			unexplained++
		}
	}
	return check{id: "I2", name: "no lost order",
		pass: missing == 0 && wrongOwner == 0 && unexplained == 0,
		detail: fmt.Sprintf("%d ids answered 202, %d rows: %d missing, %d of another user/item; "+
			"%d rows without a 202 (%d explained by a timeout/5xx answer, %d unexplained)",
			len(r.accepted), len(f.rows), missing, wrongOwner, explained+unexplained, explained, unexplained)}
}

func (r *session) checkI3(f *facts) check {
	sum := f.redisAvailable + f.pending + f.paid
	return check{id: "I3", name: "conservation",
		pass: f.redisExists && sum == f.stockTotal && f.stats.Consistent &&
			f.stats.Reserved == 0 && f.stats.Returning == 0,
		detail: fmt.Sprintf("stock %d = redis %d + pending %d + paid %d (= %d); stats consistent=%t reserved %d returning %d",
			f.stockTotal, f.redisAvailable, f.pending, f.paid, sum, f.stats.Consistent, f.stats.Reserved, f.stats.Returning)}
}

// checkI4: each cancelled order came back exactly once. Redis holds exactly
// the units no live order holds, every cancelled row has recorded its
// return, the restocked set holds exactly the cancelled orders, and the
// buyers hash (the quota each return frees) matches the live rows user by user.
func (r *session) checkI4(f *facts) check {
	var cancelled, notReturned, noMarker int
	for _, o := range f.rows {
		if o.status != "CANCELLED" {
			continue
		}
		cancelled++
		if !o.returned {
			notReturned++
		}
		if !f.restocked[o.id] {
			noMarker++
		}
	}
	strayMarker := 0
	for id := range f.restocked {
		if o := f.byID[id]; o == nil || o.status != "CANCELLED" {
			strayMarker++
		}
	}
	quotaOff := 0
	for u, n := range f.live {
		if f.buyers[u] != n {
			quotaOff++
		}
	}
	for u, n := range f.buyers {
		if _, ok := f.live[u]; !ok && n != 0 {
			quotaOff++
		}
	}
	want := f.stockTotal - f.liveUnits
	return check{id: "I4", name: "exactly-once return",
		pass: f.redisAvailable == want && notReturned == 0 && noMarker == 0 && strayMarker == 0 && quotaOff == 0,
		detail: fmt.Sprintf("redis available %d = stock %d − live %d; %d cancelled: %d without stock_returned, "+
			"%d without / %d stray restock marker; %d users whose Redis quota ≠ live rows",
			f.redisAvailable, f.stockTotal, f.liveUnits, cancelled, notReturned, noMarker, strayMarker, quotaOff)}
}

func (r *session) checkI5(f *facts) check {
	return check{id: "I5", name: "per-user limit",
		pass:   f.overLimit == 0 && f.maxLive <= r.cfg.Limit,
		detail: fmt.Sprintf("max live units of one user %d ≤ limit %d; %d users over (SQL GROUP BY user_id)", f.maxLive, r.cfg.Limit, f.overLimit)}
}
