package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The state changes of an order. Each is one conditional statement that
// reports what it changed, so concurrent callers (timers, sweepers, user
// cancels, payment callbacks) agree on a single winner without locks held
// across round trips.

// MarkPaid moves a PENDING order to PAID with the provider's trade number.
// won is false when the order was not PENDING (the caller reads it to tell
// a repeated callback from a closed order). A trade number already used by
// another order is ErrDuplicateTrade.
func (s *Store) MarkPaid(ctx context.Context, id int64, tradeNo string, paidAt time.Time) (Order, bool, error) {
	o, err := scanOrder(s.pool.QueryRow(ctx, `
		UPDATE orders SET status = 'PAID', trade_no = $2, paid_at = $3
		WHERE id = $1 AND status = 'PENDING'
		RETURNING `+orderColumns, id, tradeNo, paidAt.UTC()))
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, false, nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return Order{}, false, ErrDuplicateTrade
	}
	if err != nil {
		return Order{}, false, translate("mark order paid", err)
	}
	return o, true, nil
}

// CancelPending moves those of ids that are PENDING to CANCELLED and returns
// the orders it moved: the winners, who alone give their stock back. With
// dueOnly, an order is only cancelled once expire_at has passed by the
// database's clock, so a timer that fires early cannot cancel early.
func (s *Store) CancelPending(ctx context.Context, ids []int64, reason CancelReason, dueOnly bool) ([]Order, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `
		UPDATE orders SET status = 'CANCELLED', cancel_reason = $2, cancelled_at = now()
		WHERE id = ANY($1) AND status = 'PENDING' AND (NOT $3 OR expire_at <= now())
		RETURNING `+orderColumns, ids, string(reason), dueOnly)
	if err != nil {
		return nil, translate("cancel orders", err)
	}
	return collectOrders(rows, "cancel orders")
}

// CancelOverdue cancels (reason TIMEOUT) up to limit PENDING orders whose
// expire_at passed more than grace ago: the sweeper's safety net for timers
// that never fired. SKIP LOCKED lets many workers sweep at once without
// waiting on each other; the status condition keeps each cancel single.
func (s *Store) CancelOverdue(ctx context.Context, grace time.Duration, limit int) ([]Order, error) {
	rows, err := s.pool.Query(ctx, `
		WITH due AS (
			SELECT id FROM orders
			WHERE status = 'PENDING' AND expire_at <= now() - $1::interval
			ORDER BY expire_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		UPDATE orders o SET status = 'CANCELLED', cancel_reason = 'TIMEOUT', cancelled_at = now()
		FROM due WHERE o.id = due.id AND o.status = 'PENDING'
		RETURNING `+prefixed("o.", orderColumns), grace, limit)
	if err != nil {
		return nil, translate("cancel overdue orders", err)
	}
	return collectOrders(rows, "cancel overdue orders")
}

// Unreturned lists up to limit CANCELLED orders whose stock return has not
// been recorded and that were cancelled more than olderThan ago (a younger
// one is probably still being returned by its canceller).
func (s *Store) Unreturned(ctx context.Context, olderThan time.Duration, limit int) ([]Order, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+orderColumns+` FROM orders
		WHERE status = 'CANCELLED' AND NOT stock_returned AND cancelled_at <= now() - $1::interval
		ORDER BY cancelled_at
		LIMIT $2`, olderThan, limit)
	if err != nil {
		return nil, translate("list unreturned orders", err)
	}
	return collectOrders(rows, "list unreturned orders")
}

// MarkStockReturned records that the orders' units are back in Redis.
func (s *Store) MarkStockReturned(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE orders SET stock_returned = true
		WHERE id = ANY($1) AND status = 'CANCELLED' AND NOT stock_returned`, ids)
	return translate("mark stock returned", err)
}

// LiveState is one item's orders as a single PostgreSQL snapshot sees them:
// what a Redis rebuild needs.
type LiveState struct {
	// Held is each user's live units (PENDING + PAID).
	Held map[int64]int64
	// Cancelled lists the item's cancelled orders.
	Cancelled []int64
	// Persisted tells which of the asked reservation ids are rows.
	Persisted map[int64]bool
}

// LiveUnits reads an item's live units, its cancelled orders and which of
// reserved (order ids whose reservations the caller read from Redis first)
// are already rows, all from one snapshot (a read-only REPEATABLE READ
// transaction). Read in separate statements, a cancel committing between
// them would count its order as held and as restocked (its units stranded
// for good), and a reconciler inserting a reservation between them would
// count it neither as held nor as reserved (its units sold twice).
func (s *Store) LiveUnits(ctx context.Context, itemID int64, reserved []int64) (LiveState, error) {
	st := LiveState{Held: map[int64]int64{}, Persisted: map[int64]bool{}}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `
				SELECT user_id, sum(quantity) FROM orders
				WHERE item_id = $1 AND status IN ('PENDING', 'PAID') GROUP BY user_id`, itemID)
			if err != nil {
				return err
			}
			var uid, units int64
			if _, err := pgx.ForEachRow(rows, []any{&uid, &units}, func() error { st.Held[uid] = units; return nil }); err != nil {
				return err
			}
			if s.liveUnitsRead != nil {
				s.liveUnitsRead()
			}
			rows, err = tx.Query(ctx, `SELECT id FROM orders WHERE item_id = $1 AND status = 'CANCELLED'`, itemID)
			if err != nil {
				return err
			}
			if st.Cancelled, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
				return err
			}
			if len(reserved) == 0 {
				return nil
			}
			rows, err = tx.Query(ctx, `SELECT id FROM orders WHERE id = ANY($1)`, reserved)
			if err != nil {
				return err
			}
			var id int64
			_, err = pgx.ForEachRow(rows, []any{&id}, func() error { st.Persisted[id] = true; return nil })
			return err
		})
	if err != nil {
		return LiveState{}, translate("live units", err)
	}
	return st, nil
}

func collectOrders(rows pgx.Rows, op string) ([]Order, error) {
	defer rows.Close()
	var out []Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, fmt.Errorf("order: %s: %w", op, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(op, err)
	}
	return out, nil
}

// prefixed qualifies every column of a column list with a table alias.
func prefixed(alias, columns string) string {
	var out []byte
	start := true
	for i := 0; i < len(columns); i++ {
		c := columns[i]
		if start && c != ' ' && c != '\n' && c != '\t' {
			out = append(out, alias...)
			start = false
		}
		out = append(out, c)
		if c == ',' {
			start = true
		}
	}
	return string(out)
}

// StillPending reports which of ids are PENDING orders.
func (s *Store) StillPending(ctx context.Context, ids []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id FROM orders WHERE id = ANY($1) AND status = 'PENDING'`, ids)
	if err != nil {
		return nil, translate("pending orders", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, translate("pending orders", err)
	}
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}
