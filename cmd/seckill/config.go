package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

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
}

// PostgresConfig is the PostgreSQL connection.
type PostgresConfig struct {
	DSN      string `yaml:"dsn" secret:"true"`
	MaxConns int32  `yaml:"max_conns"`
}

// NATSConfig is the broker; an empty URL runs an embedded server.
type NATSConfig struct {
	URL             string        `yaml:"url" secret:"true"`
	DataDir         string        `yaml:"data_dir"`
	Listen          string        `yaml:"listen"`
	Stream          string        `yaml:"stream"`
	Subject         string        `yaml:"subject"`
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	PublishTimeout  time.Duration `yaml:"publish_timeout"`
	Replicas        int           `yaml:"replicas"`
	TimeoutStream   string        `yaml:"timeout_stream"`
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
	// flight per gateway; 0 sends every buy on its own.
	RedisPipelines int `yaml:"redis_pipelines"`
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
			ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond},
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
			CatalogRefresh: time.Second, SoldOutRecheck: 500 * time.Millisecond, RedisPipelines: 1},
		Worker: WorkerConfig{BatchSize: 1000, FetchWait: 50 * time.Millisecond, AckWait: 30 * time.Second,
			Persisters: 2, ReconcileInterval: 2 * time.Second, ReconcileGrace: 10 * time.Second,
			TimeoutBatch: 500, SweepInterval: 5 * time.Second, SweepGrace: time.Second, ReturnRetryAfter: 5 * time.Second,
			RecoveryInterval: time.Second, RecoverySettle: 5 * time.Second},
		Log:     LogConfig{Level: "info", Format: "json"},
		Runtime: RuntimeConfig{GCPercent: 400},
	}
}

// loadConfig reads defaults, then the file (if any), then the environment,
// then validates. Unknown keys in the file are errors, not silently ignored.
func loadConfig(path string, env func(string) (string, bool)) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		dec := yaml.NewDecoder(f)
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(reflect.ValueOf(&cfg).Elem(), "SECKILL", env); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

// applyEnv overrides every leaf field from SECKILL_<SECTION>_<KEY>.
func applyEnv(v reflect.Value, prefix string, env func(string) (string, bool)) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := prefix + "_" + strings.ToUpper(f.Tag.Get("yaml"))
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := applyEnv(fv, name, env); err != nil {
				return err
			}
			continue
		}
		raw, ok := env(name)
		if !ok {
			continue
		}
		if err := setField(fv, raw); err != nil {
			return fmt.Errorf("config: %s=%q: %w", name, redactIf(f, raw), err)
		}
	}
	return nil
}

func redactIf(f reflect.StructField, raw string) string {
	if f.Tag.Get("secret") == "true" {
		return "***"
	}
	return raw
}

func setField(fv reflect.Value, raw string) error {
	switch fv.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, fv.Type().Bits())
		if err != nil {
			return err
		}
		fv.SetInt(n)
	case reflect.Uint32:
		n, err := strconv.ParseUint(raw, 10, 32)
		if err != nil {
			return err
		}
		fv.SetUint(n)
	case reflect.Float64:
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return err
		}
		fv.SetFloat(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		fv.SetBool(b)
	default:
		return fmt.Errorf("unsupported type %s", fv.Type())
	}
	return nil
}

// validate names the first bad setting the way the user would write it.
func (c Config) validate() error {
	var errs []error
	bad := func(key, why string) { errs = append(errs, fmt.Errorf("config: %s %s", key, why)) }
	if c.HTTP.Addr == "" {
		bad("http.addr", "must be set")
	}
	if c.HTTP.MaxBodyBytes < 256 {
		bad("http.max_body_bytes", "must be at least 256")
	}
	if c.Redis.Addr == "" {
		bad("redis.addr", "must be set")
	}
	if c.Postgres.DSN == "" {
		bad("postgres.dsn", "must be set")
	}
	if c.NATS.URL == "" && c.NATS.DataDir == "" {
		bad("nats.data_dir", "must be set when nats.url is empty (embedded server)")
	}
	if c.NATS.DuplicateWindow < 2*time.Minute {
		bad("nats.duplicate_window", "must be at least 2m")
	}
	if len(c.Auth.Secret) < 32 {
		bad("auth.secret", "must be at least 32 characters")
	}
	if len(c.Payment.Secret) < 32 {
		bad("payment.secret", "must be at least 32 characters")
	}
	if c.Sentinel.BuyQPS <= 0 {
		bad("sentinel.buy_qps", "must be positive")
	}
	if c.Sentinel.UserQPS <= 0 {
		bad("sentinel.user_qps", "must be positive")
	}
	if c.Semaphore.Capacity < 1 || c.Semaphore.Block < 1 || c.Semaphore.Block > c.Semaphore.Capacity {
		bad("semaphore.block", "must be between 1 and semaphore.capacity")
	}
	if c.Semaphore.TTL < time.Second {
		bad("semaphore.ttl", "must be at least 1s")
	}
	for key, d := range map[string]time.Duration{
		"buy.catalog_refresh": c.Buy.CatalogRefresh, "buy.sold_out_recheck": c.Buy.SoldOutRecheck,
		"worker.reconcile_interval": c.Worker.ReconcileInterval, "worker.recovery_interval": c.Worker.RecoveryInterval,
		"worker.fetch_wait": c.Worker.FetchWait, "worker.ack_wait": c.Worker.AckWait,
		"worker.return_retry_after": c.Worker.ReturnRetryAfter, "worker.sweep_grace": c.Worker.SweepGrace,
		"nats.publish_timeout": c.NATS.PublishTimeout, "http.shutdown_timeout": c.HTTP.ShutdownTimeout,
	} {
		if d <= 0 {
			bad(key, "must be positive")
		}
	}
	if c.Buy.NodeLeaseTTL < 3*time.Second {
		bad("buy.node_lease_ttl", "must be at least 3s")
	}
	if c.Worker.BatchSize < 1 || c.Worker.BatchSize > 10000 {
		bad("worker.batch_size", "must be between 1 and 10000")
	}
	if c.NATS.Schedules != "auto" && c.NATS.Schedules != "off" {
		bad("nats.schedules", "must be auto or off")
	}
	if c.Worker.SweepInterval < 100*time.Millisecond {
		bad("worker.sweep_interval", "must be at least 100ms")
	}
	if c.Worker.RecoverySettle < c.NATS.PublishTimeout {
		bad("worker.recovery_settle", "must be at least nats.publish_timeout")
	}
	if c.Worker.ReconcileGrace < time.Second {
		bad("worker.reconcile_grace", "must be at least 1s")
	}
	if c.Runtime.GCPercent < 25 {
		bad("runtime.gc_percent", "must be at least 25")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error")
	}
	return errors.Join(errs...)
}

// Redacted returns the config with every secret masked, for logging.
func (c Config) Redacted() Config {
	out := c
	mask(reflect.ValueOf(&out).Elem())
	return out
}

func mask(v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		fv := v.Field(i)
		if t.Field(i).Type.Kind() == reflect.Struct {
			mask(fv)
			continue
		}
		if t.Field(i).Tag.Get("secret") == "true" && fv.String() != "" {
			fv.SetString("***")
		}
	}
}

// LogValue logs the config by its YAML names, secrets masked, durations as
// "500ms" rather than nanoseconds.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(attrsOf(reflect.ValueOf(c.Redacted()))...)
}

func attrsOf(v reflect.Value) []slog.Attr {
	t := v.Type()
	attrs := make([]slog.Attr, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name, fv := t.Field(i).Tag.Get("yaml"), v.Field(i)
		switch x := fv.Interface().(type) {
		case time.Duration:
			attrs = append(attrs, slog.String(name, x.String()))
		default:
			if fv.Kind() == reflect.Struct {
				attrs = append(attrs, slog.Attr{Key: name, Value: slog.GroupValue(attrsOf(fv)...)})
			} else {
				attrs = append(attrs, slog.Any(name, x))
			}
		}
	}
	return attrs
}
