package order

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the PostgreSQL side of seckill: activities, items and orders. It
// is safe for concurrent use; every method is one statement or one
// transaction. Driver errors that mean something to callers are translated
// into ErrNotFound, ErrAlreadyPublished and ErrInvalid; every other error is
// an infrastructure failure, wrapped with the method's name.
type Store struct {
	pool *pgxpool.Pool
	// liveUnitsRead, when set by a test, runs inside LiveUnits between its
	// two reads.
	liveUnitsRead func()
}

// NewStore returns a Store over pool. The pool's search_path selects the
// schema; Migrate must have been applied to it.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// Pool returns the pool the store uses, for callers that run their own
// conditional UPDATEs in the same database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping reports whether PostgreSQL answers, for readiness checks.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("order: ping postgres: %w", err)
	}
	return nil
}

// translate maps integrity violations (SQLSTATE class 23: check, not-null,
// unique, foreign key) to ErrInvalid, naming the constraint, because they
// mean the input was wrong and retrying cannot help. Other errors are
// wrapped as they are.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 && pgErr.Code[:2] == "23" {
		what := pgErr.ConstraintName
		if what == "" {
			what = pgErr.ColumnName
		}
		return fmt.Errorf("%w: %s violates %s (%s): %w", ErrInvalid, op, what, pgErr.Code, err)
	}
	return fmt.Errorf("order: %s: %w", op, err)
}
