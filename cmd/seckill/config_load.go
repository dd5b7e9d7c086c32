package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/seckill/seckill/stock"
)

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
			// yaml.v3 quotes the offending value, which may be a secret
			// written in the wrong place: keep the line, drop the value.
			return cfg, fmt.Errorf("config %s: %s", path, yamlQuoted.ReplaceAllString(err.Error(), "(value hidden)"))
		}
	}
	if err := applyEnv(reflect.ValueOf(&cfg).Elem(), "SECKILL", env); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

// yamlQuoted matches the values yaml.v3 quotes in its errors (`…`).
var yamlQuoted = regexp.MustCompile("`[^`]*`")

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
	if _, err := stock.ParseDurability(c.Redis.Durability, false); err != nil {
		bad("redis.durability", "must be auto, fence or replica")
	}
	if c.Redis.WaitReplicas < 1 {
		bad("redis.wait_replicas", "must be at least 1")
	}
	if c.Redis.WaitTimeout < time.Millisecond || c.Redis.WaitTimeout > 10*time.Second {
		bad("redis.wait_timeout", "must be between 1ms and 10s")
	} else if c.Redis.ReadTimeout > 0 && c.Redis.WaitTimeout >= c.Redis.ReadTimeout {
		// WAIT blocks its connection: a reply later than read_timeout is a
		// read error, not an unconfirmed buy.
		bad("redis.wait_timeout", "must be shorter than redis.read_timeout")
	}
	if c.Postgres.DSN == "" {
		bad("postgres.dsn", "must be set")
	}
	if c.NATS.URL == "" && c.NATS.DataDir == "" {
		bad("nats.data_dir", "must be set when nats.url is empty (embedded server)")
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		bad("nats.replicas", "must be between 1 and 5")
	} else if c.NATS.Replicas > 1 && c.NATS.URL == "" {
		bad("nats.replicas", "above 1 needs nats.url naming a NATS cluster (the embedded server is a single node)")
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
	if c.Buy.RedisLinger < 0 || c.Buy.RedisLinger > 10*time.Millisecond {
		bad("buy.redis_linger", "must be between 0 and 10ms")
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
