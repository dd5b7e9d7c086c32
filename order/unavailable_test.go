package order_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seckill/seckill/order"
)

func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A real connection failure: nothing listens on port 1.
	_, connErr := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2")
	if connErr == nil {
		t.Fatal("connected to port 1")
	}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", fmt.Errorf("order: order 7: %w", connErr), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"connection exception", &pgconn.PgError{Code: "08006"}, true},
		{"broker down", fmt.Errorf("x: %w", order.ErrBrokerDown), true},
		{"deadline", context.DeadlineExceeded, true},
		{"not found", order.ErrNotFound, false},
		{"invalid", fmt.Errorf("%w: name", order.ErrInvalid), false},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"nil", nil, false},
	} {
		if got := order.IsUnavailable(c.err); got != c.want {
			t.Errorf("%s: IsUnavailable = %v, want %v", c.name, got, c.want)
		}
	}
}
