package worker_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/ordertest"
	"github.com/seckill/seckill/order/worker"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// fixture is one worker, built by worker.New as cmd builds it but never
// started: tests call each service's RunOnce. It runs over the test's own
// PostgreSQL database, Redis key prefix and embedded NATS.
type fixture struct {
	ctx       context.Context
	log       *slog.Logger
	store     *order.Store
	rdb       redis.UniversalClient
	keys      stock.Keys
	stock     *stock.Store
	broker    *order.Broker
	canceller *order.Canceller
	w         *worker.Worker
}

type opts struct {
	noSchedules bool
	broker      *order.Broker         // nil: an embedded one
	rdb         redis.UniversalClient // nil: the shared test Redis
	cfg         worker.Config
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func setup(t *testing.T, o opts) *fixture {
	t.Helper()
	f := &fixture{ctx: t.Context(), log: testLogger()}
	f.store = order.NewStore(ordertest.NewPool(t))
	if o.rdb != nil {
		f.rdb, f.keys = o.rdb, stock.Keys{Prefix: "t"}
	} else {
		f.rdb, f.keys = stocktest.New(t)
	}
	f.stock = stock.NewStore(f.rdb, f.keys)
	f.broker = o.broker
	if f.broker == nil {
		f.broker = ordertest.NewBroker(t)
	}
	f.canceller = order.NewCanceller(f.log, f.store, f.stock)
	cfg := o.cfg
	cfg.Persister.FetchWait = 20 * time.Millisecond
	cfg.Timeouts.Stream = f.broker.Config().Stream + "_TIMEOUTS"
	cfg.Timeouts.DisableSchedules = o.noSchedules
	var err error
	f.w, err = worker.New(f.ctx, worker.Deps{Log: f.log, Broker: f.broker, Store: f.store, Stock: f.stock,
		Registry: prometheus.NewRegistry(), Canceller: f.canceller}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// publish creates and publishes a one-item activity selling units, one per
// user, whose orders expire payTimeout after the buy.
func (f *fixture) publish(t *testing.T, units int64, payTimeout time.Duration) (aid, iid int64) {
	t.Helper()
	now := time.Now()
	a, err := f.store.CreateActivity(f.ctx, order.Activity{
		Name: t.Name(), StartAt: now.Add(-time.Minute), EndAt: now.Add(time.Hour),
		PayTimeout: payTimeout, PerUserLimit: 1,
		Items: []order.Item{{Name: "phone", PriceCents: 99900, Stock: units}},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := order.NewAdmin(f.store, f.stock).Publish(f.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	return a.ID, a.Items[0].ID
}

var nextOrderID atomic.Int64

func init() { nextOrderID.Store(1 << 50) }

// buy runs the buy script for users first..first+n-1 (one unit each) and
// returns their reservations; nothing is published.
func (f *fixture) buy(t *testing.T, aid, iid, first int64, n int) []stock.Reservation {
	t.Helper()
	out := make([]stock.Reservation, n)
	for i := range out {
		r, err := f.stock.Buy(f.ctx, stock.BuyRequest{ActivityID: aid, ItemID: iid,
			UserID: first + int64(i), OrderID: nextOrderID.Add(1), Quantity: 1})
		if err != nil {
			t.Fatalf("buy %d: %v", i, err)
		}
		out[i] = r.Reservation
	}
	return out
}

// publishOrders hands reservations to JetStream as the gateway does.
func (f *fixture) publishOrders(t *testing.T, rs []stock.Reservation) {
	t.Helper()
	for i, err := range order.NewPublisher(f.broker, 5*time.Second).PublishMany(f.ctx, rs) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// persistAll runs the persister until n orders went through it.
func (f *fixture) persistAll(t *testing.T, n int) {
	t.Helper()
	done := 0
	cluster.Eventually(t, 10*time.Second, func() bool {
		k, err := f.w.Persister(0).RunOnce(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		done += k
		return done >= n
	})
	if done != n {
		t.Fatalf("persister handled %d orders, want %d", done, n)
	}
}

// countRows counts the orders matching where (with $1 = the activity).
func (f *fixture) countRows(t *testing.T, where string, aid int64) int64 {
	t.Helper()
	var n int64
	if err := f.store.Pool().QueryRow(f.ctx, `SELECT count(*) FROM orders WHERE `+where, aid).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) snapshot(t *testing.T, aid, iid int64) stock.ItemSnapshot {
	t.Helper()
	s, err := f.stock.Snapshot(f.ctx, aid, iid)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
