package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// ItemCounts is how one item's orders stand in PostgreSQL. Units are sums of
// Quantity; Orders counts rows in every state.
type ItemCounts struct {
	PendingUnits   int64
	PaidUnits      int64
	CancelledUnits int64
	// ReturningUnits are cancelled units not yet back in Redis
	// (stock_returned is false): a part of CancelledUnits.
	ReturningUnits int64
	Orders         int64
}

const orderColumns = `id, activity_id, item_id, user_id, quantity, amount_cents, status, cancel_reason,
	created_at, expire_at, paid_at, cancelled_at, stock_returned, trade_no`

// insertOrdersSQL turns one array per column into rows, so a batch of any
// size is one statement with a cached plan and fourteen parameters (row
// parameters would hit the 65,535-parameter limit at 4,681 orders). Existing
// ids are skipped, which makes JetStream redelivery harmless.
const insertOrdersSQL = `
	INSERT INTO orders (` + orderColumns + `)
	SELECT * FROM unnest(
		$1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::int[], $6::bigint[],
		$7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[],
		$11::timestamptz[], $12::timestamptz[], $13::boolean[], $14::text[])
	ON CONFLICT (id) DO NOTHING`

// InsertOrders stores a batch of orders with one statement and returns how
// many of them were new; orders whose id is already stored (or repeated in the
// batch) are left untouched and not counted. This is the persister's hot path
// and is meant for batches of 1 to 10,000 orders.
//
// Orders are stored as given, normally PENDING. A batch that breaks a
// constraint (an unknown status, a non-positive quantity, a trade_no already
// used) inserts nothing and returns ErrInvalid naming the constraint.
func (s *Store) InsertOrders(ctx context.Context, orders []Order) (inserted int64, err error) {
	if len(orders) == 0 {
		return 0, nil
	}
	n := len(orders)
	var (
		ids, activityIDs, itemIDs   = make([]int64, n), make([]int64, n), make([]int64, n)
		userIDs, quantities, amount = make([]int64, n), make([]int64, n), make([]int64, n)
		statuses                    = make([]string, n)
		reasons, tradeNos           = make([]pgtype.Text, n), make([]pgtype.Text, n)
		createdAt, expireAt         = make([]time.Time, n), make([]time.Time, n)
		paidAt, cancelledAt         = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
		returned                    = make([]bool, n)
	)
	for i, o := range orders {
		ids[i], activityIDs[i], itemIDs[i] = o.ID, o.ActivityID, o.ItemID
		userIDs[i], quantities[i], amount[i] = o.UserID, o.Quantity, o.AmountCents
		statuses[i] = string(o.Status)
		reasons[i] = pgtype.Text{String: string(o.CancelReason), Valid: o.CancelReason != ""}
		tradeNos[i] = pgtype.Text{String: o.TradeNo, Valid: o.TradeNo != ""}
		createdAt[i], expireAt[i] = o.CreatedAt, o.ExpireAt
		if o.PaidAt != nil {
			paidAt[i] = pgtype.Timestamptz{Time: *o.PaidAt, Valid: true}
		}
		if o.CancelledAt != nil {
			cancelledAt[i] = pgtype.Timestamptz{Time: *o.CancelledAt, Valid: true}
		}
		returned[i] = o.StockReturned
	}
	tag, err := s.pool.Exec(ctx, insertOrdersSQL,
		ids, activityIDs, itemIDs, userIDs, quantities, amount,
		statuses, reasons, createdAt, expireAt, paidAt, cancelledAt, returned, tradeNos)
	if err != nil {
		return 0, translate("insert orders", err)
	}
	return tag.RowsAffected(), nil
}

// Order returns the order with id, or ErrNotFound.
func (s *Store) Order(ctx context.Context, id int64) (Order, error) {
	o, err := scanOrder(s.pool.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, ErrNotFound
	}
	if err != nil {
		return Order{}, fmt.Errorf("order: order %d: %w", id, err)
	}
	return o, nil
}

// ExistingOrderIDs reports which of ids are stored, with one query: the map
// holds true for each stored id and has no entry for the others.
func (s *Store) ExistingOrderIDs(ctx context.Context, ids []int64) (map[int64]bool, error) {
	found := make(map[int64]bool, len(ids))
	if len(ids) == 0 {
		return found, nil
	}
	rows, _ := s.pool.Query(ctx, `SELECT id FROM orders WHERE id = ANY($1)`, ids)
	var id int64
	_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
		found[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("order: existing order ids: %w", err)
	}
	return found, nil
}

// ItemCounts returns, for every item of the activity, how its orders stand,
// keyed by item id. Items without orders are present with zero counts; an
// unknown activity gives an empty map. Each item is counted through the
// (item_id, status) index, so the cost follows that activity's orders only.
func (s *Store) ItemCounts(ctx context.Context, activityID int64) (map[int64]ItemCounts, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT i.id,
		       coalesce(sum(o.quantity) FILTER (WHERE o.status = 'PENDING'), 0),
		       coalesce(sum(o.quantity) FILTER (WHERE o.status = 'PAID'), 0),
		       coalesce(sum(o.quantity) FILTER (WHERE o.status = 'CANCELLED'), 0),
		       coalesce(sum(o.quantity) FILTER (WHERE o.status = 'CANCELLED' AND NOT o.stock_returned), 0),
		       count(o.id)
		FROM items i LEFT JOIN orders o ON o.item_id = i.id AND o.activity_id = i.activity_id
		WHERE i.activity_id = $1
		GROUP BY i.id`, activityID)
	counts := make(map[int64]ItemCounts)
	var (
		itemID int64
		c      ItemCounts
	)
	_, err := pgx.ForEachRow(rows, []any{&itemID, &c.PendingUnits, &c.PaidUnits, &c.CancelledUnits, &c.ReturningUnits, &c.Orders}, func() error {
		counts[itemID] = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("order: item counts of activity %d: %w", activityID, err)
	}
	return counts, nil
}

// scanOrder reads one row of orderColumns; NULL reason and trade number
// become "", and times come back in UTC.
func scanOrder(row pgx.Row) (Order, error) {
	var (
		o       Order
		reason  pgtype.Text
		tradeNo pgtype.Text
	)
	err := row.Scan(&o.ID, &o.ActivityID, &o.ItemID, &o.UserID, &o.Quantity, &o.AmountCents,
		&o.Status, &reason, &o.CreatedAt, &o.ExpireAt, &o.PaidAt, &o.CancelledAt,
		&o.StockReturned, &tradeNo)
	if err != nil {
		return Order{}, err
	}
	o.CancelReason, o.TradeNo = CancelReason(reason.String), tradeNo.String
	o.CreatedAt, o.ExpireAt = o.CreatedAt.UTC(), o.ExpireAt.UTC()
	o.PaidAt, o.CancelledAt = utcPtr(o.PaidAt), utcPtr(o.CancelledAt)
	return o, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
