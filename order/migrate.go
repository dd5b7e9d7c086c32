package order

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate brings the schema that pool's search_path points at up to date: it
// applies every embedded migrations/NNNN_*.sql (goose format, `-- +goose Up`)
// not yet recorded in schema_migrations, in version order, each exactly once
// and each in its own transaction.
//
// Any number of processes may call Migrate at start-up at once: goose holds a
// session-level advisory lock while it reads the table and applies; the others
// poll for the lock once a second and then find nothing to do. The lock key is
// derived from the schema name, so migrating one schema never waits on another
// (parallel tests each own a schema), and it is the key the hand-written runner
// before goose locked, so an old and a new binary starting side by side during
// an upgrade still exclude each other. Versions in the table that this binary
// does not know (a newer binary migrated) are ignored; a known version missing
// below the newest applied one is applied, not refused.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	var key int64
	if err := pool.QueryRow(ctx,
		`SELECT hashtextextended('seckill.migrate:' || coalesce(current_schema(), ''), 0)`,
	).Scan(&key); err != nil {
		return fmt.Errorf("order: migrate: lock key: %w", err)
	}
	// 1s is the shortest poll the locker takes; 300 polls wait out a five
	// minute migration in another process.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(key), lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("order: migrate: %w", err)
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("order: migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool) // closing db leaves pool open
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectCustom, db, files,
		goose.WithStore(versionTable{}),
		goose.WithSessionLocker(locker),
		goose.WithAllowOutofOrder(true),
		goose.WithDisableGlobalRegistry(true),
		goose.WithLogger(goose.NopLogger()),
	)
	if err != nil {
		return fmt.Errorf("order: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("order: migrate: %w", err)
	}
	return nil
}

// versionTable is goose's version store kept on the table the hand-written
// runner before goose created, schema_migrations(version, applied_at), so a
// database that runner migrated is already up to date for goose and a binary
// rolled back to that runner still reads it. goose's own table
// (goose_db_version) would have needed a copy on first start.
//
// goose keeps a row for version 0 to mark a created table; here version 0 is
// implied by the table's existence and never stored.
type versionTable struct{}

func (versionTable) Tablename() string { return "schema_migrations" }

// TableExists looks in current_schema() only, where CreateVersionTable and
// the migrations create their tables; goose calls it before
// CreateVersionTable. Resolving the name through the whole search_path
// would find another schema's table (search_path "app,old") and migrate
// nothing into this one.
func (versionTable) TableExists(ctx context.Context, db database.DBTxConn) (bool, error) {
	var exists bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_tables
		WHERE schemaname = current_schema() AND tablename = 'schema_migrations')`).Scan(&exists)
	return exists, err
}

func (versionTable) CreateVersionTable(ctx context.Context, db database.DBTxConn) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    int PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`)
	return err
}

func (versionTable) Insert(ctx context.Context, db database.DBTxConn, req database.InsertRequest) error {
	if req.Version == 0 {
		return nil
	}
	_, err := db.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, req.Version)
	return err
}

func (versionTable) Delete(ctx context.Context, db database.DBTxConn, version int64) error {
	_, err := db.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = $1`, version)
	return err
}

func (versionTable) GetMigration(ctx context.Context, db database.DBTxConn, version int64) (*database.GetMigrationResult, error) {
	if version == 0 {
		return &database.GetMigrationResult{IsApplied: true}, nil
	}
	var r database.GetMigrationResult
	err := db.QueryRowContext(ctx, `SELECT applied_at FROM schema_migrations WHERE version = $1`, version).Scan(&r.Timestamp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, database.ErrVersionNotFound
	}
	if err != nil {
		return nil, err
	}
	r.IsApplied = true
	return &r, nil
}

func (versionTable) GetLatestVersion(ctx context.Context, db database.DBTxConn) (int64, error) {
	var v int64
	err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// ListMigrations lists the applied versions newest first, ending with the
// implied version 0.
func (versionTable) ListMigrations(ctx context.Context, db database.DBTxConn) ([]*database.ListMigrationsResult, error) {
	rows, err := db.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*database.ListMigrationsResult
	for rows.Next() {
		r := &database.ListMigrationsResult{IsApplied: true}
		if err := rows.Scan(&r.Version); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return append(out, &database.ListMigrationsResult{Version: 0, IsApplied: true}), nil
}
