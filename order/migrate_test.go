package order_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

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

// TestMigrateConcurrentProcessesApplyOnce is TestMigrateConcurrentAppliesOnce
// with a pool per caller, as separate workers and gateways starting at once
// have: the lock must hold across connections, not only inside one pool.
func TestMigrateConcurrentProcessesApplyOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	first := ordertest.NewEmptyPool(t)

	const processes = 6
	errs := make([]error, processes)
	var wg sync.WaitGroup
	for i := range processes {
		pool, err := pgxpool.NewWithConfig(ctx, first.Config()) // same schema, own connections
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
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
	if got := migrationRows(ctx, t, first); got != len(files) {
		t.Fatalf("schema_migrations has %d rows, want %d (one per migration file)", got, len(files))
	}
}

// TestMigrateUpgradesOldRunnerDatabase: a database migrated by the
// hand-written runner that goose replaced (schema_migrations(version,
// applied_at), 0001 applied in one transaction) is up to date for the new
// binary: 0001 is not run again (it would fail: CREATE TABLE without IF NOT
// EXISTS) and the table keeps its row.
func TestMigrateUpgradesOldRunnerDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := ordertest.NewEmptyPool(t)

	init, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	appliedAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`CREATE TABLE schema_migrations (
			version    int PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`,
		string(init), // simple protocol: the whole file at once, as the old runner did
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatalf("old runner by hand: %v", err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (1, $1)`, appliedAt); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	if err := order.Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate on a database the old runner migrated: %v", err)
	}
	var n int
	var at time.Time
	if err := pool.QueryRow(ctx, `SELECT count(*), min(applied_at) FROM schema_migrations WHERE version <= 1`).Scan(&n, &at); err != nil {
		t.Fatal(err)
	}
	if n != 1 || !at.Equal(appliedAt) {
		t.Fatalf("schema_migrations up to version 1: %d rows applied at %v; want the old runner's one row at %v", n, at, appliedAt)
	}
	var goose bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&goose); err != nil || goose {
		t.Fatalf("goose_db_version exists=%v (%v): the version table must stay schema_migrations", goose, err)
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

// A schema that comes first on search_path is migrated even when a schema
// later on the path was migrated before (search_path "app,old"): the version
// table is looked up in current_schema(), where the migrations create their
// tables, as the hand-written runner did.
func TestMigrateFirstSchemaOnSearchPath(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	admin := ordertest.NewEmptyPool(t)
	var suffix string
	if err := admin.QueryRow(ctx, `SELECT substr(md5(random()::text), 1, 10)`).Scan(&suffix); err != nil {
		t.Fatal(err)
	}
	app, old := "mig_app_"+suffix, "mig_old_"+suffix
	for _, q := range []string{"CREATE SCHEMA " + app, "CREATE SCHEMA " + old} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA "+app+" CASCADE; DROP SCHEMA "+old+" CASCADE")
	})
	poolOn := func(path string) *pgxpool.Pool {
		cfg := admin.Config().Copy()
		cfg.ConnConfig.RuntimeParams["search_path"] = path
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	if err := order.Migrate(ctx, poolOn(old)); err != nil {
		t.Fatal(err)
	}
	if err := order.Migrate(ctx, poolOn(app+","+old)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'orders'`, app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("Migrate with search_path %s,%s left %s without an orders table", app, old, app)
	}
}
