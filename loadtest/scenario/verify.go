package scenario

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

// Check is one verdict of the verification.
type Check struct {
	ID     string // I1…I7 for the README's invariants, a letter for a scenario's own
	Name   string
	Pass   bool
	Detail string // the numbers behind the verdict
}

// OrderRow is one row of the orders table of the run's activity.
type OrderRow struct {
	ID, userID, itemID, qty int64
	Status, Reason          string
	createdAt, ExpireAt     time.Time
	paidAt, CancelledAt     *time.Time
	returned                bool
	tradeNo                 string
}

// Facts are the run's end state, read straight from the stores the gateway
// uses (and its stats endpoint), independent of what the gateway answered.
type Facts struct {
	stats     ItemStats
	DrainNote string

	stockTotal int64 // items.stock
	Rows       []OrderRow
	byID       map[int64]*OrderRow
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

// Gather reads the facts from PostgreSQL and Redis.
func (r *Session) Gather(ctx context.Context, st ItemStats) (*Facts, error) {
	f := &Facts{stats: st, byID: map[int64]*OrderRow{}, live: map[int64]int64{},
		buyers: map[int64]int64{}, restocked: map[int64]bool{}}
	if err := r.gatherSQL(ctx, f); err != nil {
		return nil, fmt.Errorf("verify: postgres: %w", err)
	}
	if err := r.gatherRedis(ctx, f); err != nil {
		return nil, fmt.Errorf("verify: redis: %w", err)
	}
	return f, nil
}

func (r *Session) gatherSQL(ctx context.Context, f *Facts) error {
	conn, err := pgx.Connect(ctx, r.Config.PostgresDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.QueryRow(ctx, `SELECT stock FROM items WHERE id = $1 AND activity_id = $2`,
		r.Act.ItemID, r.Act.ID).Scan(&f.stockTotal); err != nil {
		return fmt.Errorf("item %d: %w", r.Act.ItemID, err)
	}
	rows, err := conn.Query(ctx, `
		SELECT id, user_id, item_id, quantity, status, coalesce(cancel_reason, ''), created_at,
		       expire_at, paid_at, cancelled_at, stock_returned, coalesce(trade_no, '')
		FROM orders WHERE activity_id = $1`, r.Act.ID)
	if err != nil {
		return err
	}
	var o OrderRow
	_, err = pgx.ForEachRow(rows, []any{&o.ID, &o.userID, &o.itemID, &o.qty, &o.Status, &o.Reason,
		&o.createdAt, &o.ExpireAt, &o.paidAt, &o.CancelledAt, &o.returned, &o.tradeNo}, func() error {
		f.Rows = append(f.Rows, o)
		o = OrderRow{} // fresh time pointers for the next row's scan
		return nil
	})
	if err != nil {
		return err
	}
	users := map[int64]bool{}
	for i := range f.Rows {
		o := &f.Rows[i]
		f.byID[o.ID] = o
		users[o.userID] = true
		switch o.Status {
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
		r.Act.ItemID, r.Config.Limit).Scan(&f.overLimit, &f.maxLive)
}

func (r *Session) gatherRedis(ctx context.Context, f *Facts) error {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: strings.Split(r.Config.RedisAddr, ",")})
	defer rdb.Close()
	keys := stock.Keys{Prefix: r.Config.RedisPrefix}
	aid, iid := r.Act.ID, r.Act.ItemID
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

// Invariants are the README's I1–I5, which every scenario must keep.
func (r *Session) Invariants(f *Facts) []Check {
	return []Check{r.CheckI1(f), r.CheckI2(f), r.CheckI3(f), r.CheckI4(f), r.CheckI5(f)}
}

// CheckI1: no oversell: the units of live orders never exceed the stock,
// in the rows and in the admin stats.
func (r *Session) CheckI1(f *Facts) Check {
	return Check{ID: "I1", Name: "no oversell",
		Pass: f.liveUnits <= f.stockTotal && f.stats.Pending+f.stats.Paid <= f.stats.StockTotal,
		Detail: fmt.Sprintf("live units %d ≤ stock %d (pending %d, paid %d); stats pending+paid %d ≤ %d",
			f.liveUnits, f.stockTotal, f.pending, f.paid, f.stats.Pending+f.stats.Paid, f.stats.StockTotal)}
}

// CheckI2: every 202 is one row of its buyer; a row without a 202 is only
// acceptable when its buyer got no clear answer (timeout, 5xx), where the
// order may well have been taken.
func (r *Session) CheckI2(f *Facts) Check {
	var missing, wrongOwner int
	for id, buyer := range r.Accepted {
		o := f.byID[id]
		switch {
		case o == nil:
			missing++
		case o.userID != r.UserID(buyer) || o.itemID != r.Act.ItemID:
			wrongOwner++
		}
	}
	unclear := map[int64]bool{} // users with a buy answered by no response or 5xx
	for _, a := range r.Src.Attempts() {
		if a.Kind == OpBuy && a.answered && (a.Status == 0 || a.Status >= 500) {
			unclear[r.UserID(a.Buyer)] = true
		}
	}
	var explained, unexplained int
	for _, o := range f.Rows {
		if _, ok := r.Accepted[o.ID]; ok {
			continue
		}
		if unclear[o.userID] {
			explained++
		} else {
			unexplained++
		}
	}
	return Check{ID: "I2", Name: "no lost order",
		Pass: missing == 0 && wrongOwner == 0 && unexplained == 0,
		Detail: fmt.Sprintf("%d ids answered 202, %d rows: %d missing, %d of another user/item; "+
			"%d rows without a 202 (%d explained by a timeout/5xx answer, %d unexplained)",
			len(r.Accepted), len(f.Rows), missing, wrongOwner, explained+unexplained, explained, unexplained)}
}

// CheckI3: conservation: the stock is Redis's available units plus the
// pending and paid units, and the stats see nothing reserved or returning.
func (r *Session) CheckI3(f *Facts) Check {
	sum := f.redisAvailable + f.pending + f.paid
	return Check{ID: "I3", Name: "conservation",
		Pass: f.redisExists && sum == f.stockTotal && f.stats.Consistent &&
			f.stats.Reserved == 0 && f.stats.Returning == 0,
		Detail: fmt.Sprintf("stock %d = redis %d + pending %d + paid %d (= %d); stats consistent=%t reserved %d returning %d",
			f.stockTotal, f.redisAvailable, f.pending, f.paid, sum, f.stats.Consistent, f.stats.Reserved, f.stats.Returning)}
}

// CheckI4: each cancelled order came back exactly once. Redis holds exactly
// the units no live order holds, every cancelled row has recorded its
// return, the restocked set holds exactly the cancelled orders, and the
// buyers hash (the quota each return frees) matches the live rows user by user.
func (r *Session) CheckI4(f *Facts) Check {
	var cancelled, notReturned, noMarker int
	for _, o := range f.Rows {
		if o.Status != "CANCELLED" {
			continue
		}
		cancelled++
		if !o.returned {
			notReturned++
		}
		if !f.restocked[o.ID] {
			noMarker++
		}
	}
	strayMarker := 0
	for id := range f.restocked {
		if o := f.byID[id]; o == nil || o.Status != "CANCELLED" {
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
	return Check{ID: "I4", Name: "exactly-once return",
		Pass: f.redisAvailable == want && notReturned == 0 && noMarker == 0 && strayMarker == 0 && quotaOff == 0,
		Detail: fmt.Sprintf("redis available %d = stock %d − live %d; %d cancelled: %d without stock_returned, "+
			"%d without / %d stray restock marker; %d users whose Redis quota ≠ live rows",
			f.redisAvailable, f.stockTotal, f.liveUnits, cancelled, notReturned, noMarker, strayMarker, quotaOff)}
}

// CheckI5: no buyer holds more live units than the per-user limit, asked
// of PostgreSQL itself.
func (r *Session) CheckI5(f *Facts) Check {
	return Check{ID: "I5", Name: "per-user limit",
		Pass:   f.overLimit == 0 && f.maxLive <= r.Config.Limit,
		Detail: fmt.Sprintf("max live units of one user %d ≤ limit %d; %d users over (SQL GROUP BY user_id)", f.maxLive, r.Config.Limit, f.overLimit)}
}
