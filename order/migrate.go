package order

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one embedded migrations/NNNN_name.sql file.
type migration struct {
	version int
	name    string
	sql     string
}

// Migrate brings the schema that pool's search_path points at up to date: it
// applies every embedded migrations/NNNN_*.sql not yet recorded in
// schema_migrations, in version order, each exactly once.
//
// Everything happens in one transaction that first takes a transaction-scoped
// advisory lock derived from the schema name, so any number of processes may
// call Migrate at start-up at once: one applies, the others wait and then find
// nothing to do. A failing migration rolls back all of them. Versions in the
// table that this binary does not know (a newer binary migrated) are ignored.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migs, err := loadMigrations()
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// The key is per schema so that migrating one schema never waits on
		// another (parallel tests each own a schema).
		if _, err := tx.Exec(ctx,
			`SELECT pg_advisory_xact_lock(hashtextextended('seckill.migrate:' || coalesce(current_schema(), ''), 0))`,
		); err != nil {
			return fmt.Errorf("order: migrate: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    int PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("order: migrate: create schema_migrations: %w", err)
		}
		rows, _ := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return fmt.Errorf("order: migrate: read schema_migrations: %w", err)
		}
		for _, m := range migs {
			if slices.Contains(applied, m.version) {
				continue
			}
			// Exec without arguments uses the simple protocol, which runs a
			// file of several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("order: migrate %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.version); err != nil {
				return fmt.Errorf("order: migrate %s: record: %w", m.name, err)
			}
		}
		return nil
	})
}

// loadMigrations reads the embedded files sorted by version. Names must be
// NNNN_description.sql with unique versions; anything else is a build mistake.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("order: migrations: %w", err)
	}
	migs := make([]migration, 0, len(names))
	for _, name := range names {
		base := path.Base(name)
		prefix, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("order: migration %s: name must be NNNN_description.sql", base)
		}
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("order: migration %s: %w", base, err)
		}
		migs = append(migs, migration{version: version, name: base, sql: string(body)})
	}
	slices.SortFunc(migs, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(migs); i++ {
		if migs[i].version == migs[i-1].version {
			return nil, fmt.Errorf("order: migrations %s and %s share version %d", migs[i-1].name, migs[i].name, migs[i].version)
		}
	}
	return migs, nil
}
