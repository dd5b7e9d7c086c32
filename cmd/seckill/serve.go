package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock"
)

func openPostgres(ctx context.Context, cfg PostgresConfig) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx's parse error can quote the DSN, password included: don't pass it on.
		return nil, errors.New("config: postgres.dsn is not a valid PostgreSQL connection string")
	}
	pc.MaxConns = cfg.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping %s:%d/%s: %w", pc.ConnConfig.Host, pc.ConnConfig.Port, pc.ConnConfig.Database, err)
	}
	return pool, nil
}

func openRedis(cfg RedisConfig, onConnect func(context.Context, *redis.Conn) error) redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        strings.Split(cfg.Addr, ","),
		Password:     cfg.Password,
		DB:           cfg.DB,
		PoolSize:     cfg.PoolSize,
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout,
		// RESP2: seckill uses no push notifications, and RESP3 makes
		// go-redis look for them around every command on the hot path.
		Protocol:  2,
		OnConnect: onConnect,
	})
}

func migrate(ctx context.Context, log *slog.Logger, cfg Config) error {
	pool, err := openPostgres(ctx, cfg.Postgres)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := order.Migrate(ctx, pool); err != nil {
		return err
	}
	log.Info("migrations applied")
	return nil
}

// serve runs the process until ctx is cancelled (SIGTERM), then shuts down
// in this order: stop accepting HTTP and finish in-flight requests; stop the
// background loops (the persister finishes its batch); give back the
// semaphore permits and the node-id lease; close NATS (drain), Redis,
// PostgreSQL. Senders stop before the things they send to.
func serve(ctx context.Context, log *slog.Logger, cfg Config, role string) error {
	log.Info("starting seckill", "role", role, "config", cfg)
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(cfg.Runtime.GCPercent)
	}
	if cfg.Auth.Secret == devSecret || cfg.Payment.Secret == devSecret {
		log.Warn("using the built-in development secret; set SECKILL_AUTH_SECRET and SECKILL_PAYMENT_SECRET in production")
	}
	pool, err := openPostgres(ctx, cfg.Postgres)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := order.Migrate(ctx, pool); err != nil {
		return err
	}
	rdb := openRedis(cfg.Redis, stock.RestartHook(stock.Keys{Prefix: cfg.Redis.KeyPrefix}, log))
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping %s: %w", cfg.Redis.Addr, err)
	}
	broker, err := order.OpenBroker(ctx, log, order.BrokerConfig{
		URL: cfg.NATS.URL, DataDir: cfg.NATS.DataDir, Listen: cfg.NATS.Listen,
		Stream: cfg.NATS.Stream, Subject: cfg.NATS.Subject,
		DuplicateWindow: cfg.NATS.DuplicateWindow, Replicas: cfg.NATS.Replicas,
	})
	if err != nil {
		return err
	}
	defer broker.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store := order.NewStore(pool)
	sk := stock.NewStore(rdb, stock.Keys{Prefix: cfg.Redis.KeyPrefix})
	checks := map[string]func(context.Context) error{
		"postgres": store.Ping,
		"redis":    func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		"nats":     broker.Ping,
	}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f(bg) }()
	}

	var handler http.Handler
	var cleanup []func(context.Context)
	// release stops the background loops, then gives back the semaphore
	// permits and the node-id lease, with time of its own: a shutdown that
	// used up its budget on HTTP must still release them.
	release := func() {
		stopBG()
		wg.Wait()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, f := range cleanup {
			f(rctx)
		}
	}
	if role == "all" || role == "gateway" {
		h, clean, err := startGateway(ctx, log, cfg, reg, sk, store, broker, checks, goRun)
		if err != nil {
			release()
			return err
		}
		handler, cleanup = h, clean
	} else {
		handler = gateway.NewOps(log, reg, checks)
	}
	if role == "all" || role == "worker" {
		if err := startWorker(ctx, log, cfg, reg, sk, store, broker, goRun); err != nil {
			release()
			return err
		}
	}

	srv := &http.Server{
		Addr: cfg.HTTP.Addr, Handler: handler,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, ReadTimeout: cfg.HTTP.ReadTimeout,
		WriteTimeout: cfg.HTTP.WriteTimeout, IdleTimeout: cfg.HTTP.IdleTimeout,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	var pprofSrv *http.Server
	if cfg.HTTP.PprofAddr != "" {
		// Profiling stays off the public listener.
		pprofSrv = &http.Server{Addr: cfg.HTTP.PprofAddr, Handler: pprofMux(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			log.Info("pprof listening", "addr", cfg.HTTP.PprofAddr)
			if err := pprofSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("pprof listener stopped", "err", err)
			}
		}()
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		release()
		return fmt.Errorf("http: %w", err)
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	log.Info("http listening", "addr", ln.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-srvErr:
		runErr = fmt.Errorf("http: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if pprofSrv != nil {
		_ = pprofSrv.Close()
	}
	release()
	log.Info("stopped")
	return runErr
}

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
	var buyer gateway.Buyer = sk
	if cfg.Buy.RedisPipelines > 0 {
		batcher := stock.NewBatcher(sk, cfg.Buy.RedisPipelines, 256)
		goRun(batcher.Run)
		buyer = batcher
	}
	catalog := order.NewCatalog(store, 250*time.Millisecond)
	if err := catalog.Refresh(ctx); err != nil {
		_ = node.Release(ctx)
		return nil, nil, err
	}
	if err := os.MkdirAll(cfg.Sentinel.LogDir, 0o755); err != nil {
		_ = node.Release(ctx)
		return nil, nil, fmt.Errorf("sentinel.log_dir: %w", err)
	}
	srv, err := gateway.New(gateway.Deps{
		Log: log, Auth: gateway.NewAuth(cfg.Auth.Secret), Stock: sk, Buyer: buyer, SoldOut: soldOut, Semaphore: sem,
		Node: node, Catalog: catalog, Store: store, Admin: order.NewAdmin(store, sk),
		Orders:    order.NewOrders(store, order.NewLookup(store, broker), order.NewCanceller(log, store, sk)),
		Signer:    gateway.NewSigner(cfg.Payment.Secret),
		Publisher: order.NewPublisher(broker, cfg.NATS.PublishTimeout),
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
		if err := node.Run(ctx, log); err != nil {
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
	goRun(func(ctx context.Context) error { return sem.Run(ctx, log) })
	goRun(func(ctx context.Context) error { return soldOut.Run(ctx, log, cfg.Buy.SoldOutRecheck) })
	goRun(func(ctx context.Context) error { return catalog.Run(ctx, log, cfg.Buy.CatalogRefresh) })
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

func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// persisterDurable is the JetStream consumer all workers share.
const persisterDurable = "persister"

func startWorker(ctx context.Context, log *slog.Logger, cfg Config, reg *prometheus.Registry, sk *stock.Store,
	store *order.Store, broker *order.Broker, goRun func(func(context.Context) error)) error {
	m := order.NewMetrics(reg)
	canceller := order.NewCanceller(log, store, sk)
	timeouts, err := order.OpenTimeouts(ctx, log, broker, store, canceller, order.TimeoutConfig{
		Stream: cfg.NATS.TimeoutStream, Batch: cfg.Worker.TimeoutBatch,
		FallbackMaxAckPending: cfg.NATS.FallbackMaxAckPending, DisableSchedules: cfg.NATS.Schedules == "off",
	})
	if err != nil {
		return err
	}
	pcfg := order.PersisterConfig{Durable: persisterDurable, BatchSize: cfg.Worker.BatchSize,
		FetchWait: cfg.Worker.FetchWait, AckWait: cfg.Worker.AckWait}
	for i := 0; i < max(1, cfg.Worker.Persisters); i++ {
		p, err := order.NewPersister(ctx, log, broker, store, sk, m, pcfg, timeouts.Schedule)
		if err != nil {
			return err
		}
		goRun(p.Run)
	}
	goRun(timeouts.Run)
	goRun(order.NewReconciler(log, store, sk, m, order.ReconcilerConfig{
		Grace: cfg.Worker.ReconcileGrace, Every: cfg.Worker.ReconcileInterval,
	}, timeouts.Schedule).Run)
	goRun(order.NewSweeper(log, store, canceller, order.SweeperConfig{
		Every: cfg.Worker.SweepInterval, Grace: cfg.Worker.SweepGrace, ReturnAfter: cfg.Worker.ReturnRetryAfter,
	}).Run)
	goRun(order.NewRecovery(log, store, sk, broker.OrdersDrained(persisterDurable), order.RecoveryConfig{
		Every: cfg.Worker.RecoveryInterval, Settle: cfg.Worker.RecoverySettle,
	}).Run)
	return nil
}
