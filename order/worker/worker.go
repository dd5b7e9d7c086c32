package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/lifecycle"
)

// PersisterDurable is the JetStream consumer all workers' persisters share;
// recovery watches it to know when every accepted order is a row.
const PersisterDurable = "persister"

// ErrStarted is returned by Start on a worker that was started before.
var ErrStarted = errors.New("worker: already started")

// Deps are what the worker runs on; the caller owns them and closes them
// after Stop returned.
type Deps struct {
	Log      *slog.Logger
	Broker   *order.Broker
	Store    *order.Store
	Stock    *stock.Store
	Registry prometheus.Registerer // the worker metrics are registered here
	// Canceller is the cancellation path the timers and the sweeper use;
	// nil builds one over Store and Stock.
	Canceller *order.Canceller
}

// Config tunes the services; zero fields take each service's defaults.
type Config struct {
	Persisters int // persister loops in this process (at least 1)
	Persister  PersisterConfig
	Timeouts   TimeoutConfig
	Reconciler ReconcilerConfig
	Sweeper    SweeperConfig
	Recovery   RecoveryConfig
}

// Worker is everything only the worker role runs. New builds it (creating
// the streams and consumers), Start runs its services, Stop ends them in the
// order written in the package doc.
type Worker struct {
	log        *slog.Logger
	persisters []*Persister
	timeouts   *Timeouts
	reconciler *Reconciler
	sweeper    *Sweeper
	recovery   *Recovery

	mu     sync.Mutex
	stages [][]*lifecycle.Service // in stop order; nil until Start
}

// New builds the worker's services: the payment-timeout stream and
// consumer, the persister consumer, and the loops, all wired to arm each
// persisted order's timer. Nothing runs until Start.
func New(ctx context.Context, d Deps, cfg Config) (*Worker, error) {
	if d.Canceller == nil {
		d.Canceller = order.NewCanceller(d.Log, d.Store, d.Stock)
	}
	m := NewMetrics(d.Registry)
	timeouts, err := OpenTimeouts(ctx, d.Log, d.Broker, d.Store, d.Canceller, cfg.Timeouts)
	if err != nil {
		return nil, err
	}
	if cfg.Persister.Durable == "" {
		cfg.Persister.Durable = PersisterDurable
	}
	w := &Worker{log: d.Log, timeouts: timeouts}
	for range max(1, cfg.Persisters) {
		p, err := NewPersister(ctx, d.Log, d.Broker, d.Store, d.Stock, m, cfg.Persister, timeouts.Schedule)
		if err != nil {
			return nil, err
		}
		w.persisters = append(w.persisters, p)
	}
	w.reconciler = NewReconciler(d.Log, d.Store, d.Stock, m, cfg.Reconciler, timeouts.Schedule)
	w.sweeper = NewSweeper(d.Log, d.Store, d.Canceller, cfg.Sweeper)
	w.recovery = NewRecovery(d.Log, d.Store, d.Stock, OrdersDrained(d.Broker, cfg.Persister.Durable), cfg.Recovery)
	return w, nil
}

// Persister returns the i-th persister (tests call its RunOnce).
func (w *Worker) Persister(i int) *Persister { return w.persisters[i] }

// Timeouts returns the payment-timeout timers.
func (w *Worker) Timeouts() *Timeouts { return w.timeouts }

// Reconciler returns the reconciler.
func (w *Worker) Reconciler() *Reconciler { return w.reconciler }

// Sweeper returns the sweeper.
func (w *Worker) Sweeper() *Sweeper { return w.sweeper }

// Recovery returns the Redis-loss recovery.
func (w *Worker) Recovery() *Recovery { return w.recovery }

// Start runs every service in the background. Cancelling ctx is a hard stop
// of all of them; call Stop for an orderly one.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stages != nil {
		return ErrStarted
	}
	intake := []*lifecycle.Service{w.reconciler.Service()}
	for _, p := range w.persisters {
		intake = append(intake, p.Service())
	}
	w.stages = [][]*lifecycle.Service{
		intake,
		{w.timeouts.Service(), w.sweeper.Service()},
		{w.recovery.Service()},
	}
	for _, stage := range w.stages {
		for _, s := range stage {
			if err := s.Start(ctx); err != nil {
				return fmt.Errorf("worker: start %s: %w", s.Name(), err)
			}
		}
	}
	return nil
}

// Stop is the soft stop: stage by stage (see the package doc) no service
// starts a new pass and each finishes the one in progress. When ctx ends
// first, the rest are cancelled (hard stop). Stop returns when every service
// has returned; closing the broker, Redis and PostgreSQL is then safe.
func (w *Worker) Stop(ctx context.Context) {
	for _, stage := range w.started() {
		var wg sync.WaitGroup
		for _, s := range stage {
			wg.Go(func() { s.Stop(ctx) })
		}
		wg.Wait()
	}
}

// StopAndCancel is the hard stop: every pass in progress is cancelled.
// Work cut short is safe to redo: unacked messages are redelivered and every
// step is idempotent.
func (w *Worker) StopAndCancel() {
	for _, stage := range w.started() {
		for _, s := range stage {
			s.StopAndCancel()
		}
	}
}

func (w *Worker) started() [][]*lifecycle.Service {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stages
}
