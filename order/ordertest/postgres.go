// Package ordertest gives tests a real PostgreSQL schema of their own.
package ordertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order"
)

// DSN returns the test database: $SECKILL_TEST_POSTGRES_DSN, or the local
// default (cluster.PostgresDSN).
func DSN() string { return cluster.PostgresDSN() }

// NewPool creates a fresh schema "t_<random>" in the test database, applies
// order.Migrate to it and returns a pool whose connections use it. On
// t.Cleanup the pool is closed and the schema dropped with everything in it,
// so tests using NewPool can run in parallel without seeing each other's rows.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := NewEmptyPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := order.Migrate(ctx, pool); err != nil {
		t.Fatalf("ordertest: migrate: %v", err)
	}
	return pool
}

// NewEmptyPool is NewPool without the migrations: the schema is empty. It is
// for tests of Migrate itself.
func NewEmptyPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand contract)
	schema := "t_" + hex.EncodeToString(b[:])
	admin(ctx, t, "CREATE SCHEMA "+schema)

	cfg, err := pgxpool.ParseConfig(DSN())
	if err != nil {
		t.Fatalf("ordertest: parse DSN: %v", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("ordertest: connect: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		// The test's context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin(ctx, t, "DROP SCHEMA "+schema+" CASCADE")
	})
	return pool
}

// admin runs one statement on a short-lived connection outside any test
// schema.
func admin(ctx context.Context, t testing.TB, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, DSN())
	if err != nil {
		t.Fatalf("ordertest: connect to %s: %v", DSN(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("ordertest: %s: %v", sql, err)
	}
}

// NewDatabase creates an empty database named "<prefix>_<random>" for a
// test that runs the real binary (which migrates it at start) and returns
// its DSN; t.Cleanup drops it, closing any connection left open. The
// harness (loadtest/cluster) owns the code.
func NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	return cluster.NewDatabase(t, prefix)
}
