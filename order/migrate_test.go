package order_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/ordertest"
)

func TestMigrateTwiceIsNoOp(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := ordertest.NewPool(t) // already migrated once

	before := migrationRows(ctx, t, pool)
	if err := order.Migrate(ctx, pool); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if after := migrationRows(ctx, t, pool); after != before || after == 0 {
		t.Fatalf("schema_migrations rows: %d before, %d after second Migrate; want equal and > 0", before, after)
	}
}

func TestMigrateConcurrentAppliesOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := ordertest.NewEmptyPool(t)

	// The migrations have no IF NOT EXISTS: a second application would fail,
	// so four nil errors mean exactly one goroutine applied them.
	const workers = 4
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { errs[i] = order.Migrate(ctx, pool) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate #%d: %v", i, err)
		}
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migration files found: %v", err)
	}
	if got := migrationRows(ctx, t, pool); got != len(files) {
		t.Fatalf("schema_migrations has %d rows, want %d (one per migration file)", got, len(files))
	}
	if _, err := pool.Exec(ctx, `SELECT 1 FROM orders LIMIT 1`); err != nil {
		t.Fatalf("orders table missing after Migrate: %v", err)
	}
}

func migrationRows(ctx context.Context, t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
