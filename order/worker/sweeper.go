package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock/lifecycle"
)

// SweeperConfig tunes the sweeper.
type SweeperConfig struct {
	// Every is the sweep interval: with the timers down, an unpaid order is
	// cancelled within Every + Grace of its expire_at.
	Every time.Duration
	// Grace lets the timer handle an order first; the sweeper takes PENDING
	// orders overdue by more than this.
	Grace time.Duration
	// ReturnAfter is how long a cancelled order may sit with its stock not yet
	// returned before the sweeper retries the return.
	ReturnAfter time.Duration
	// Batch is the most orders handled per step per pass.
	Batch int
}

// Sweeper is the safety net of the lifecycle, run by every worker: it
// cancels PENDING orders the timers missed and finishes stock returns that a
// crash interrupted. Both steps are idempotent and SKIP LOCKED/conditional,
// so any number of workers may sweep at once.
type Sweeper struct {
	cfg    SweeperConfig
	store  *order.Store
	cancel *order.Canceller
	log    *slog.Logger
}

// NewSweeper returns a sweeper using the shared cancellation path.
func NewSweeper(log *slog.Logger, st *order.Store, c *order.Canceller, cfg SweeperConfig) *Sweeper {
	if cfg.Every <= 0 {
		cfg.Every = 5 * time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = time.Second
	}
	if cfg.ReturnAfter <= 0 {
		cfg.ReturnAfter = 5 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	return &Sweeper{cfg: cfg, store: st, cancel: c, log: log}
}

// Service sweeps every cfg.Every while it runs.
func (s *Sweeper) Service() *lifecycle.Service {
	return lifecycle.New(lifecycle.Config{Name: "sweeper", Every: s.cfg.Every, Log: s.log,
		// No slowing down after a failed pass: a pass that failed on one
		// part (a Redis shard without a replica, NATS without a stream
		// leader, PostgreSQL) must not delay what this service does for
		// payment timers on the others; a failed pass costs one query.
		Backoff: lifecycle.Backoff{Min: s.cfg.Every, Max: s.cfg.Every}},
		func(ctx context.Context) error {
			_, _, err := s.RunOnce(ctx)
			return err
		})
}

// RunOnce makes one pass: it returns how many overdue orders it cancelled and
// how many unfinished returns it retried. It keeps going while a step fills a
// whole batch, so a backlog is cleared in one pass.
func (s *Sweeper) RunOnce(ctx context.Context) (cancelled, retried int, err error) {
	var errs []error
	for {
		won, err := s.store.CancelOverdue(ctx, s.cfg.Grace, s.cfg.Batch)
		if err != nil {
			errs = append(errs, err)
			break
		}
		cancelled += len(won)
		if err := s.cancel.ReturnStock(ctx, won); err != nil {
			errs = append(errs, err)
		}
		if len(won) < s.cfg.Batch {
			break
		}
	}
	if cancelled > 0 {
		s.log.Info("sweeper cancelled overdue orders", "orders", cancelled)
	}
	left, err := s.store.Unreturned(ctx, s.cfg.ReturnAfter, s.cfg.Batch)
	if err != nil {
		errs = append(errs, err)
	} else if len(left) > 0 {
		retried = len(left)
		s.log.Warn("sweeper finishing interrupted stock returns", "orders", retried)
		if err := s.cancel.ReturnStock(ctx, left); err != nil {
			errs = append(errs, err)
		}
	}
	return cancelled, retried, errors.Join(errs...)
}
