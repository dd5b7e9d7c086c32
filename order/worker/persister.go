package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/seckill/seckill/stock"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock/lifecycle"
)

// AfterPersist runs for every persisted batch (new and already-present
// orders alike) before the messages are acked: payment-timeout scheduling
// hooks in here. It must be idempotent; an error leaves the batch unacked so
// it is redelivered.
type AfterPersist func(ctx context.Context, orders []order.Order) error

// PersisterConfig tunes the persister.
type PersisterConfig struct {
	Durable   string        // durable consumer name shared by all workers
	BatchSize int           // messages fetched and inserted per batch
	FetchWait time.Duration // how long a fetch waits to fill a batch
	AckWait   time.Duration // redelivery if a worker dies mid-batch
}

// Persister moves accepted orders from JetStream into PostgreSQL: fetch a
// batch, insert it with one idempotent statement, clear the Redis
// reservations, run AfterPersist, and only then ack.
type Persister struct {
	sink
	cfg    PersisterConfig
	reader *batchReader
}

// sink is the effect of persisting orders, shared by the persister and the
// reconciler: insert, clear reservations, after-persist hook. Every step is
// idempotent, so any number of workers may persist the same order.
type sink struct {
	store *order.Store
	stock *stock.Store
	after AfterPersist
	m     *Metrics
	log   *slog.Logger
}

// NewPersister creates (or binds to) the durable pull consumer.
func NewPersister(ctx context.Context, log *slog.Logger, b *order.Broker, st *order.Store, sk *stock.Store, m *Metrics, cfg PersisterConfig, after AfterPersist) (*Persister, error) {
	if cfg.Durable == "" {
		cfg.Durable = "persister"
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.FetchWait <= 0 {
		cfg.FetchWait = 100 * time.Millisecond
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	cons, err := b.EnsureConsumer(ctx, b.Config().Stream, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "seckill workers persisting orders into PostgreSQL",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxAckPending: 8 * cfg.BatchSize,
		FilterSubject: b.Config().Subject + ".created.>",
	})
	if err != nil {
		return nil, fmt.Errorf("order: persister consumer: %w", err)
	}
	// Wait for the first message up to 250 ms, then linger FetchWait for
	// more: full batches under load, one short wait when quiet.
	reader := newBatchReader(cons, cfg.BatchSize, 250*time.Millisecond, cfg.FetchWait)
	return &Persister{sink: newSink(log, st, sk, m, after), cfg: cfg, reader: reader}, nil
}

// Service persists batches back to back while it runs. Between failures it
// backs off (100ms doubling to 2s) so a PostgreSQL outage pauses persisting
// instead of spinning; reservations wait in Redis and messages in JetStream.
// A soft stop finishes the batch that was read (inserted and acked), then
// hands prefetched messages back to JetStream for other workers.
func (p *Persister) Service() *lifecycle.Service {
	return lifecycle.New(lifecycle.Config{Name: "persister", Log: p.log,
		Backoff: lifecycle.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}, AfterStop: p.reader.close},
		func(ctx context.Context) error {
			// A batch is redelivered after AckWait anyway: do not outlive it.
			ctx, cancel := context.WithTimeout(ctx, p.cfg.AckWait)
			defer cancel()
			_, err := p.RunOnce(ctx)
			return err
		})
}

// RunOnce reads and persists one batch; it returns how many orders it
// handled (0 when nothing arrived for 250 ms).
func (p *Persister) RunOnce(ctx context.Context) (int, error) {
	batch, err := p.reader.next(ctx)
	if err != nil {
		return 0, fmt.Errorf("order: fetch: %w", err)
	}
	var msgs []jetstream.Msg
	var orders []order.Order
	for _, msg := range batch {
		o, err := order.DecodeCreated(msg.Data())
		if err != nil {
			// Poison: retrying cannot help. Terminate it so it stops blocking.
			p.m.PoisonOrders.Inc()
			p.log.Error("terminating undecodable order message", "subject", msg.Subject(), "err", err)
			_ = msg.Term()
			continue
		}
		msgs = append(msgs, msg)
		orders = append(orders, o)
	}
	if len(orders) == 0 {
		return 0, nil
	}
	n, err := p.persist(ctx, orders)
	if err != nil {
		for _, msg := range msgs {
			_ = msg.NakWithDelay(time.Second)
		}
		return 0, err
	}
	p.m.Persisted.Add(float64(n))
	for _, msg := range msgs {
		_ = msg.Ack()
	}
	return len(orders), nil
}

func newSink(log *slog.Logger, st *order.Store, sk *stock.Store, m *Metrics, after AfterPersist) sink {
	if after == nil {
		after = func(context.Context, []order.Order) error { return nil }
	}
	return sink{store: st, stock: sk, after: after, m: m, log: log}
}

// persist inserts the orders, runs the after-persist hook (arming their
// payment timers), then clears their reservations; it returns how many
// rows were new. A reservation is cleared only once its order's timer is
// armed: if arming fails (a NATS stream without a leader), the persister's
// redelivery or, for the reconciler's orders, its next pass over the
// reservation left behind arms it again, so no order is left to the sweeper.
func (p *sink) persist(ctx context.Context, orders []order.Order) (int64, error) {
	n, err := p.store.InsertOrders(ctx, orders)
	if err != nil {
		return 0, err
	}
	p.m.BatchSize.Observe(float64(len(orders)))
	now := time.Now()
	for _, o := range orders {
		p.m.PersistLag.Observe(now.Sub(o.CreatedAt).Seconds())
	}
	if err := p.after(ctx, orders); err != nil {
		return n, err
	}
	if err := clearReservations(ctx, p.stock, orders); err != nil {
		// The rows are committed; a reservation left behind is harmless and
		// the reconciler clears it. Do not redeliver for this.
		p.log.Warn("clearing reservations failed", "err", err)
	}
	return n, nil
}

// clearReservations removes the Redis reservation records of persisted
// orders, one round trip per item.
func clearReservations(ctx context.Context, sk *stock.Store, orders []order.Order) error {
	byItem := map[stock.ItemRef][]int64{}
	for _, o := range orders {
		k := stock.ItemRef{ActivityID: o.ActivityID, ItemID: o.ItemID}
		byItem[k] = append(byItem[k], o.ID)
	}
	var errs []error
	for k, ids := range byItem {
		if err := sk.ClearReservations(ctx, k.ActivityID, k.ItemID, ids); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
