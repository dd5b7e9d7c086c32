package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/worker"
	"github.com/seckill/seckill/stock"
)

// startCheckBudget bounds the retries of the gateway's shard check at start.
const startCheckBudget = 30 * time.Second

// startGateway wires the HTTP gateway: node-id lease, semaphore, sold-out
// flags, buy batcher and catalog, and their background loops. The returned
// cleanup gives the leases back.
func startGateway(ctx context.Context, log *slog.Logger, cfg Config, reg *prometheus.Registry, sk *stock.Store,
	store *order.Store, broker *order.Broker, checks map[string]func(context.Context) error,
	goRun func(func(context.Context) error)) (http.Handler, []func(context.Context), error) {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s:%d:%d", host, os.Getpid(), time.Now().UnixNano())
	node, err := stock.AcquireNode(ctx, sk.Client(), sk.Keys(), holder, cfg.Buy.NodeLeaseTTL)
	if err != nil {
		return nil, nil, err
	}
	log.Info("snowflake node leased", "node", node.ID())
	sem := stock.NewSemaphore(sk.Client(), sk.Keys(), stock.SemaphoreConfig{
		Name: "buy", Capacity: cfg.Semaphore.Capacity, Block: cfg.Semaphore.Block,
		TTL: cfg.Semaphore.TTL, Holder: holder,
	})
	soldOut := stock.NewSoldOut(sk)
	catalog := order.NewCatalog(store, 250*time.Millisecond)
	catalog.Guard(sk)
	if err := catalog.Refresh(ctx); err != nil {
		_ = node.Release(ctx)
		return nil, nil, err
	}
	// Before serving: fence the items of any shard that restarted or
	// failed over while no process watched, on every master (connections
	// opened before the catalog loaded were checked without its items).
	// Connections opened from now on check themselves (stock.ShardHook).
	// A gateway that cannot check every master within startCheckBudget
	// does not start.
	shards := sk.ShardService(log, time.Second)
	cctx, cancel := context.WithTimeout(ctx, startCheckBudget)
	_, err = sk.CheckShardsAtStart(cctx)
	cancel()
	if err != nil {
		_ = node.Release(ctx)
		return nil, nil, err
	}
	if err := os.MkdirAll(cfg.Sentinel.LogDir, 0o755); err != nil {
		_ = node.Release(ctx)
		return nil, nil, fmt.Errorf("sentinel.log_dir: %w", err)
	}
	srv, err := gateway.New(gateway.Deps{
		Log: log, Auth: gateway.NewAuth(cfg.Auth.Secret), Stock: sk, SoldOut: soldOut, Semaphore: sem,
		Node: node, Catalog: catalog, Admin: order.NewAdmin(store, sk),
		Orders:    order.NewOrders(store, order.NewLookup(store, broker), order.NewCanceller(log, store, sk)),
		Signer:    gateway.NewSigner(cfg.Payment.Secret),
		Publisher: order.NewPublisher(broker, cfg.NATS.PublishTimeout),
		Batch:     stock.BatchConfig{Pipelines: cfg.Buy.RedisPipelines, MaxCalls: 256, Linger: cfg.Buy.RedisLinger},
		Broker:    broker, Registry: reg, Checks: checks,
		Flow: gateway.FlowConfig{
			LogDir: cfg.Sentinel.LogDir, BuyQPS: cfg.Sentinel.BuyQPS, UserQPS: cfg.Sentinel.UserQPS,
			BreakerErrors: cfg.Sentinel.BreakerErrors, BreakerWindowMs: cfg.Sentinel.BreakerWindowMs,
			BreakerRetryMs: cfg.Sentinel.BreakerRetryMs,
		},
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes, IdempotencyTTL: cfg.Buy.IdempotencyTTL,
	})
	if err != nil {
		_ = node.Release(ctx)
		return nil, nil, err
	}
	goRun(func(ctx context.Context) error {
		if err := node.Service(log).Run(ctx); err != nil {
			// Buys already answer 503 (NextID refuses); /readyz says why, so
			// the orchestrator replaces this gateway.
			log.Error("snowflake node lease lost; this gateway no longer accepts buys", "node", node.ID(), "err", err)
		}
		return nil
	})
	checks["node_lease"] = func(context.Context) error {
		if !node.Valid() {
			return stock.ErrLeaseLost
		}
		return nil
	}
	goRun(sem.Service(log).Run)
	goRun(soldOut.Service(log, cfg.Buy.SoldOutRecheck).Run)
	goRun(catalog.Service(log, cfg.Buy.CatalogRefresh).Run)
	goRun(shards.Run)
	cleanup := []func(context.Context){
		func(ctx context.Context) {
			if err := sem.Close(ctx); err != nil {
				log.Warn("semaphore release", "err", err)
			}
		},
		func(ctx context.Context) {
			if err := node.Release(ctx); err != nil {
				log.Warn("node lease release", "err", err)
			}
		},
	}
	return srv.Handler(), cleanup, nil
}

// pprofMux serves net/http/pprof on the separate pprof listener.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// startWorker builds and starts the worker role (order/worker): persisters
// arming payment timers, the timers, the reconciler, the sweeper and Redis
// recovery. The caller stops it with Stop before closing the clients.
func startWorker(ctx context.Context, log *slog.Logger, cfg Config, reg *prometheus.Registry, sk *stock.Store,
	store *order.Store, broker *order.Broker) (*worker.Worker, error) {
	w, err := worker.New(ctx, worker.Deps{Log: log, Broker: broker, Store: store, Stock: sk, Registry: reg},
		workerConfig(cfg))
	if err != nil {
		return nil, err
	}
	// The services' passes run under their own context: Stop ends them.
	if err := w.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	return w, nil
}

// workerConfig maps the worker and NATS config keys onto the worker's services.
func workerConfig(cfg Config) worker.Config {
	return worker.Config{
		Persisters: cfg.Worker.Persisters,
		Persister: worker.PersisterConfig{BatchSize: cfg.Worker.BatchSize,
			FetchWait: cfg.Worker.FetchWait, AckWait: cfg.Worker.AckWait},
		Timeouts: worker.TimeoutConfig{
			Stream: cfg.NATS.TimeoutStream, Batch: cfg.Worker.TimeoutBatch,
			FallbackMaxAckPending: cfg.NATS.FallbackMaxAckPending, DisableSchedules: cfg.NATS.Schedules == "off",
		},
		Reconciler: worker.ReconcilerConfig{Grace: cfg.Worker.ReconcileGrace, Every: cfg.Worker.ReconcileInterval},
		Sweeper: worker.SweeperConfig{Every: cfg.Worker.SweepInterval, Grace: cfg.Worker.SweepGrace,
			ReturnAfter: cfg.Worker.ReturnRetryAfter},
		Recovery: worker.RecoveryConfig{Every: cfg.Worker.RecoveryInterval, Settle: cfg.Worker.RecoverySettle},
	}
}
