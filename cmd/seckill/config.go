package main

import "time"

// Config is seckill's whole configuration. Every field has a default (see
// defaultConfig and configs/seckill.yaml) and can be overridden by the
// environment variable SECKILL_<SECTION>_<KEY>, e.g. SECKILL_HTTP_ADDR.
type Config struct {
	HTTP      HTTPConfig      `yaml:"http"`
	Redis     RedisConfig     `yaml:"redis"`
	Postgres  PostgresConfig  `yaml:"postgres"`
	NATS      NATSConfig      `yaml:"nats"`
	Auth      AuthConfig      `yaml:"auth"`
	Payment   PaymentConfig   `yaml:"payment"`
	Sentinel  SentinelConfig  `yaml:"sentinel"`
	Semaphore SemaphoreConfig `yaml:"semaphore"`
	Buy       BuyConfig       `yaml:"buy"`
	Worker    WorkerConfig    `yaml:"worker"`
	Log       LogConfig       `yaml:"log"`
	Runtime   RuntimeConfig   `yaml:"runtime"`
}

// RuntimeConfig tunes the Go runtime.
type RuntimeConfig struct {
	// GCPercent is GOGC for this process (the GOGC variable, when set, wins).
	// The gateway's live heap is small, so collecting less often buys CPU
	// on the hot path for a few tens of MB.
	GCPercent int `yaml:"gc_percent"`
}

// HTTPConfig is the HTTP server.
type HTTPConfig struct {
	Addr              string        `yaml:"addr"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	MaxBodyBytes      int64         `yaml:"max_body_bytes"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	// PprofAddr serves net/http/pprof on its own listener; empty = off.
	PprofAddr string `yaml:"pprof_addr"`
}

// RedisConfig is the Redis connection; Addr is a comma-separated list (more
// than one address means Redis Cluster).
type RedisConfig struct {
	Addr         string        `yaml:"addr"`
	Password     string        `yaml:"password" secret:"true"`
	DB           int           `yaml:"db"`
	KeyPrefix    string        `yaml:"key_prefix"`
	PoolSize     int           `yaml:"pool_size"`
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// Durability is what makes an accepted buy survive the loss of a Redis
	// master: "fence" (a shard that may have lost writes is fenced and
	// rebuilt from PostgreSQL), "replica" (fence, and every buy round trip
	// ends with WAIT WaitReplicas WaitTimeout on each master it used; a buy
	// not confirmed is answered 503 STOCK_UNCONFIRMED), or "auto": replica
	// on a Redis Cluster, fence on a single Redis.
	Durability string `yaml:"durability"`
	// WaitReplicas is WAIT's numreplicas under durability replica.
	WaitReplicas int `yaml:"wait_replicas"`
	// WaitTimeout is WAIT's timeout under durability replica.
	WaitTimeout time.Duration `yaml:"wait_timeout"`
}

// PostgresConfig is the PostgreSQL connection.
type PostgresConfig struct {
	DSN      string `yaml:"dsn" secret:"true"`
	MaxConns int32  `yaml:"max_conns"`
}

// NATSConfig is the broker; an empty URL runs an embedded server.
type NATSConfig struct {
	// URL is one server or the comma-separated nodes of a NATS cluster;
	// the client fails over between them.
	URL             string        `yaml:"url" secret:"true"`
	DataDir         string        `yaml:"data_dir"`
	Listen          string        `yaml:"listen"`
	Stream          string        `yaml:"stream"`
	Subject         string        `yaml:"subject"`
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	PublishTimeout  time.Duration `yaml:"publish_timeout"`
	// Replicas of every stream (orders, timeouts): 3 on a 3-node cluster.
	Replicas      int    `yaml:"replicas"`
	TimeoutStream string `yaml:"timeout_stream"`
	// Schedules: "auto" uses message schedules when the server has them
	// (2.12+), "off" forces the delayed-redelivery fallback.
	Schedules             string `yaml:"schedules"`
	FallbackMaxAckPending int    `yaml:"fallback_max_ack_pending"`
}

// AuthConfig is the JWT secret shared by the gateways and `seckill token`.
type AuthConfig struct {
	Secret string `yaml:"secret" secret:"true"`
}

// PaymentConfig is the payment provider's callback signing secret.
type PaymentConfig struct {
	Secret string `yaml:"secret" secret:"true"`
}

// SentinelConfig holds the buy path's flow-control rules.
type SentinelConfig struct {
	LogDir          string  `yaml:"log_dir"`
	BuyQPS          float64 `yaml:"buy_qps"`
	UserQPS         int64   `yaml:"user_qps"`
	BreakerErrors   float64 `yaml:"breaker_errors"`
	BreakerWindowMs uint32  `yaml:"breaker_window_ms"`
	BreakerRetryMs  uint32  `yaml:"breaker_retry_ms"`
}

// SemaphoreConfig is the distributed cap on in-flight buys.
type SemaphoreConfig struct {
	Capacity int64         `yaml:"capacity"`
	Block    int64         `yaml:"block"`
	TTL      time.Duration `yaml:"ttl"`
}

// BuyConfig tunes the buy path.
type BuyConfig struct {
	IdempotencyTTL time.Duration `yaml:"idempotency_ttl"`
	NodeLeaseTTL   time.Duration `yaml:"node_lease_ttl"`
	CatalogRefresh time.Duration `yaml:"catalog_refresh"`
	SoldOutRecheck time.Duration `yaml:"sold_out_recheck"`
	// RedisPipelines is how many coalesced buy-script round trips may be in
	// flight per gateway; 0 (and below) means 1. Every buy goes through the
	// batcher: there is no unbatched path.
	RedisPipelines int `yaml:"redis_pipelines"`
	// RedisLinger is how long a buy that would go to Redis alone waits for
	// others to share its round trip, when buys arrive faster than one per
	// linger; 0 never waits. It bounds the latency it adds.
	RedisLinger time.Duration `yaml:"redis_linger"`
}

// WorkerConfig tunes the persister and the reconciler.
type WorkerConfig struct {
	BatchSize         int           `yaml:"batch_size"`
	FetchWait         time.Duration `yaml:"fetch_wait"`
	AckWait           time.Duration `yaml:"ack_wait"`
	Persisters        int           `yaml:"persisters"`
	ReconcileInterval time.Duration `yaml:"reconcile_interval"`
	ReconcileGrace    time.Duration `yaml:"reconcile_grace"`
	TimeoutBatch      int           `yaml:"timeout_batch"`
	SweepInterval     time.Duration `yaml:"sweep_interval"`
	SweepGrace        time.Duration `yaml:"sweep_grace"`
	ReturnRetryAfter  time.Duration `yaml:"return_retry_after"`
	RecoveryInterval  time.Duration `yaml:"recovery_interval"`
	RecoverySettle    time.Duration `yaml:"recovery_settle"`
}

// LogConfig is the structured log.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

const devSecret = "dev-secret-change-me-0123456789abcdef"

func defaultConfig() Config {
	return Config{
		HTTP: HTTPConfig{Addr: ":8080", ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second,
			WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, MaxBodyBytes: 4096,
			ShutdownTimeout: 15 * time.Second},
		Redis: RedisConfig{Addr: "127.0.0.1:6379", KeyPrefix: "sk", DialTimeout: time.Second,
			ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
			Durability: "auto", WaitReplicas: 1, WaitTimeout: 50 * time.Millisecond},
		Postgres: PostgresConfig{DSN: "postgres://postgres@127.0.0.1:5432/seckill?sslmode=disable", MaxConns: 16},
		NATS: NATSConfig{DataDir: "./data/nats", Listen: "127.0.0.1:14222", Stream: "SECKILL_ORDERS",
			Subject: "seckill.orders", DuplicateWindow: 2 * time.Minute, PublishTimeout: 2 * time.Second, Replicas: 1,
			TimeoutStream: "SECKILL_TIMEOUTS", Schedules: "auto", FallbackMaxAckPending: 1_000_000},
		Auth:    AuthConfig{Secret: devSecret},
		Payment: PaymentConfig{Secret: devSecret},
		Sentinel: SentinelConfig{LogDir: "./data/sentinel", BuyQPS: 50000, UserQPS: 10,
			BreakerErrors: 20, BreakerWindowMs: 1000, BreakerRetryMs: 2000},
		Semaphore: SemaphoreConfig{Capacity: 4096, Block: 64, TTL: 6 * time.Second},
		Buy: BuyConfig{IdempotencyTTL: 24 * time.Hour, NodeLeaseTTL: 15 * time.Second,
			CatalogRefresh: time.Second, SoldOutRecheck: 500 * time.Millisecond, RedisPipelines: 1,
			RedisLinger: 300 * time.Microsecond},
		Worker: WorkerConfig{BatchSize: 1000, FetchWait: 50 * time.Millisecond, AckWait: 30 * time.Second,
			Persisters: 2, ReconcileInterval: 2 * time.Second, ReconcileGrace: 10 * time.Second,
			TimeoutBatch: 500, SweepInterval: 5 * time.Second, SweepGrace: time.Second, ReturnRetryAfter: 5 * time.Second,
			RecoveryInterval: time.Second, RecoverySettle: 5 * time.Second},
		Log:     LogConfig{Level: "info", Format: "json"},
		Runtime: RuntimeConfig{GCPercent: 400},
	}
}
