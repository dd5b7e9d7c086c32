package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CatalogItem is one item of a published activity together with the activity
// rules the buy path needs; it is what gets loaded into Redis and what the
// reconciler compares against.
type CatalogItem struct {
	ActivityID, ItemID int64
	PriceCents, Stock  int64
	StartAt, EndAt     time.Time
	PerUserLimit       int64
	PayTimeout         time.Duration
}

const activityColumns = `id, name, start_at, end_at, pay_timeout_seconds, per_user_limit, status, created_at, published_at`

// CreateActivity validates a (see Activity.Validate, against now) and inserts
// it with its items in one transaction. It returns the stored activity: ids
// assigned, status DRAFT, items in the order given (which is id order).
// Invalid input returns ErrInvalid and writes nothing.
func (s *Store) CreateActivity(ctx context.Context, a Activity, now time.Time) (Activity, error) {
	if err := a.Validate(now); err != nil {
		return Activity{}, err
	}
	var out Activity
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		row := tx.QueryRow(ctx, `
			INSERT INTO activities (name, start_at, end_at, pay_timeout_seconds, per_user_limit)
			VALUES ($1, $2, $3, $4, $5)
			RETURNING `+activityColumns,
			a.Name, a.StartAt, a.EndAt, int64(a.PayTimeout/time.Second), a.PerUserLimit)
		var err error
		if out, err = scanActivity(row); err != nil {
			return err
		}
		// One round trip for all items; a batch keeps RETURNING ids in
		// the order the items were given.
		var b pgx.Batch
		for _, it := range a.Items {
			b.Queue(`INSERT INTO items (activity_id, name, price_cents, stock) VALUES ($1, $2, $3, $4) RETURNING id`,
				out.ID, it.Name, it.PriceCents, it.Stock)
		}
		br := tx.SendBatch(ctx, &b)
		out.Items = make([]Item, len(a.Items))
		for i, it := range a.Items {
			it.ActivityID = out.ID
			if err := br.QueryRow().Scan(&it.ID); err != nil {
				br.Close()
				return err
			}
			out.Items[i] = it
		}
		return br.Close()
	})
	if err != nil {
		return Activity{}, translate("create activity", err)
	}
	return out, nil
}

// Activity returns the activity with its items ordered by id, or ErrNotFound.
func (s *Store) Activity(ctx context.Context, id int64) (Activity, error) {
	a, err := scanActivity(s.pool.QueryRow(ctx, `SELECT `+activityColumns+` FROM activities WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Activity{}, ErrNotFound
	}
	if err != nil {
		return Activity{}, fmt.Errorf("order: activity %d: %w", id, err)
	}
	if a.Items, err = s.items(ctx, id); err != nil {
		return Activity{}, err
	}
	return a, nil
}

// MarkPublished moves a DRAFT activity to PUBLISHED with one conditional
// UPDATE and returns it. Only one caller ever wins: the others get
// ErrAlreadyPublished, so whoever loads stock into Redis does it once.
// An unknown id returns ErrNotFound.
func (s *Store) MarkPublished(ctx context.Context, id int64) (Activity, error) {
	a, err := scanActivity(s.pool.QueryRow(ctx, `
		UPDATE activities SET status = 'PUBLISHED', published_at = now()
		WHERE id = $1 AND status = 'DRAFT'
		RETURNING `+activityColumns, id))
	if errors.Is(err, pgx.ErrNoRows) {
		// Lost or never could have won: tell the two apart.
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM activities WHERE id = $1)`, id).Scan(&exists); err != nil {
			return Activity{}, fmt.Errorf("order: publish activity %d: %w", id, err)
		}
		if !exists {
			return Activity{}, ErrNotFound
		}
		return Activity{}, ErrAlreadyPublished
	}
	if err != nil {
		return Activity{}, fmt.Errorf("order: publish activity %d: %w", id, err)
	}
	if a.Items, err = s.items(ctx, id); err != nil {
		return Activity{}, err
	}
	return a, nil
}

// LiveFor is how long after its window ends an item still matters to the
// background services: its orders may be pending and its reservations may
// still need reconciling or rebuilding.
const LiveFor = 24 * time.Hour

// LiveItems is the one definition of the items that matter at now: published,
// and on sale, upcoming or ended less than LiveFor ago. The catalog, the
// reconciler and Redis recovery all read it.
func (s *Store) LiveItems(ctx context.Context, now time.Time) ([]CatalogItem, error) {
	return s.PublishedItems(ctx, now.Add(-LiveFor))
}

// PublishedItems lists the items of PUBLISHED activities whose window ends
// after endedAfter, ordered by activity and item id. Pass the current time to
// get what is on sale or about to be; pass an earlier time to include
// activities that ended recently (orders may still be pending on them).
func (s *Store) PublishedItems(ctx context.Context, endedAfter time.Time) ([]CatalogItem, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT i.activity_id, i.id, i.price_cents, i.stock,
		       a.start_at, a.end_at, a.per_user_limit, a.pay_timeout_seconds
		FROM activities a JOIN items i ON i.activity_id = a.id
		WHERE a.status = 'PUBLISHED' AND a.end_at > $1
		ORDER BY i.activity_id, i.id`, endedAfter)
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CatalogItem, error) {
		var c CatalogItem
		var payTimeoutSeconds int64
		err := row.Scan(&c.ActivityID, &c.ItemID, &c.PriceCents, &c.Stock,
			&c.StartAt, &c.EndAt, &c.PerUserLimit, &payTimeoutSeconds)
		c.StartAt, c.EndAt = c.StartAt.UTC(), c.EndAt.UTC()
		c.PayTimeout = time.Duration(payTimeoutSeconds) * time.Second
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("order: published items: %w", err)
	}
	return items, nil
}

func (s *Store) items(ctx context.Context, activityID int64) ([]Item, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT id, activity_id, name, price_cents, stock
		FROM items WHERE activity_id = $1 ORDER BY id`, activityID)
	items, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Item])
	if err != nil {
		return nil, fmt.Errorf("order: items of activity %d: %w", activityID, err)
	}
	return items, nil
}

// scanActivity reads one row of activityColumns. Times come back in UTC, the
// zone of the HTTP contract.
func scanActivity(row pgx.Row) (Activity, error) {
	var a Activity
	var payTimeoutSeconds int64
	err := row.Scan(&a.ID, &a.Name, &a.StartAt, &a.EndAt, &payTimeoutSeconds,
		&a.PerUserLimit, &a.Status, &a.CreatedAt, &a.PublishedAt)
	if err != nil {
		return Activity{}, err
	}
	a.PayTimeout = time.Duration(payTimeoutSeconds) * time.Second
	a.StartAt, a.EndAt, a.CreatedAt = a.StartAt.UTC(), a.EndAt.UTC(), a.CreatedAt.UTC()
	a.PublishedAt = utcPtr(a.PublishedAt)
	return a, nil
}
