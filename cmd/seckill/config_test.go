package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// shippedConfig is the default config file, relative to this package.
const shippedConfig = "../../configs/seckill.yaml"

// fakeEnv returns an env lookup that sees only vars, never the real
// environment, so a developer's SECKILL_* exports cannot change a test.
func fakeEnv(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestConfigDefaultsLoadAndValidate(t *testing.T) {
	cfg, err := loadConfig("", fakeEnv(nil))
	if err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if !reflect.DeepEqual(cfg, defaultConfig()) {
		t.Fatalf("loadConfig with no file and no env differs from defaultConfig():\n got %+v\nwant %+v", cfg, defaultConfig())
	}
}

// TestConfigFileDocumentsDefaults keeps configs/seckill.yaml honest: it must
// spell out every setting with exactly the built-in default.
func TestConfigFileDocumentsDefaults(t *testing.T) {
	cfg, err := loadConfig(shippedConfig, fakeEnv(nil))
	if err != nil {
		t.Fatalf("load %s: %v", shippedConfig, err)
	}
	if want := defaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Fatalf("%s differs from defaultConfig():\n%s", shippedConfig, diffConfig(cfg, want))
	}

	// Every leaf setting appears in the file, so the file documents it (a key
	// left out would still "equal" the default, silently).
	raw, err := os.ReadFile(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse %s: %v", shippedConfig, err)
	}
	for _, key := range leafKeys(reflect.TypeOf(Config{}), "") {
		section, name, _ := strings.Cut(key, ".")
		if _, ok := doc[section][name]; !ok {
			t.Errorf("%s does not document %s", shippedConfig, key)
		}
	}
}

// leafKeys returns "section.key" for every leaf field of t.
func leafKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("yaml")
		if prefix != "" {
			name = prefix + "." + name
		}
		if f.Type.Kind() == reflect.Struct {
			out = append(out, leafKeys(f.Type, name)...)
			continue
		}
		out = append(out, name)
	}
	return out
}

// diffConfig names the leaf settings where got and want differ.
func diffConfig(got, want Config) string {
	var b strings.Builder
	var walk func(g, w reflect.Value, path string)
	walk = func(g, w reflect.Value, path string) {
		for i := 0; i < g.NumField(); i++ {
			f := g.Type().Field(i)
			p := f.Tag.Get("yaml")
			if path != "" {
				p = path + "." + p
			}
			if f.Type.Kind() == reflect.Struct {
				walk(g.Field(i), w.Field(i), p)
				continue
			}
			if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
				b.WriteString("  " + p + ": file has " + fmtValue(g.Field(i)) + ", default is " + fmtValue(w.Field(i)) + "\n")
			}
		}
	}
	walk(reflect.ValueOf(got), reflect.ValueOf(want), "")
	return b.String()
}

func fmtValue(v reflect.Value) string { return fmt.Sprintf("%#v", v.Interface()) }

func TestConfigEmptyFileMeansDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(path, []byte("# nothing set\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, fakeEnv(nil))
	if err != nil {
		t.Fatalf("empty file: %v", err)
	}
	if !reflect.DeepEqual(cfg, defaultConfig()) {
		t.Fatalf("empty file differs from defaults:\n%s", diffConfig(cfg, defaultConfig()))
	}
}

func TestConfigFileOverridesAndEnvOverridesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	body := "http:\n  addr: \":7000\"\nredis:\n  key_prefix: \"fromfile\"\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, fakeEnv(map[string]string{"SECKILL_HTTP_ADDR": ":7001"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != ":7001" {
		t.Errorf("http.addr = %q, want the env value :7001 over the file's :7000", cfg.HTTP.Addr)
	}
	if cfg.Redis.KeyPrefix != "fromfile" {
		t.Errorf("redis.key_prefix = %q, want the file value", cfg.Redis.KeyPrefix)
	}
	if cfg.HTTP.ReadTimeout != defaultConfig().HTTP.ReadTimeout {
		t.Errorf("http.read_timeout = %v, want the default (not in file or env)", cfg.HTTP.ReadTimeout)
	}
}

// TestConfigEnvOverrides covers every kind of setting the environment can set.
func TestConfigEnvOverrides(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		value string
		got   func(Config) any
		want  any
	}{
		{"string", "SECKILL_HTTP_ADDR", "127.0.0.1:9999", func(c Config) any { return c.HTTP.Addr }, "127.0.0.1:9999"},
		{"string secret", "SECKILL_AUTH_SECRET", strings.Repeat("s", 40), func(c Config) any { return c.Auth.Secret }, strings.Repeat("s", 40)},
		{"string empty", "SECKILL_NATS_LISTEN", "", func(c Config) any { return c.NATS.Listen }, ""},
		{"int", "SECKILL_REDIS_DB", "3", func(c Config) any { return c.Redis.DB }, 3},
		{"durability", "SECKILL_REDIS_DURABILITY", "replica", func(c Config) any { return c.Redis.Durability }, "replica"},
		{"int32", "SECKILL_POSTGRES_MAX_CONNS", "7", func(c Config) any { return c.Postgres.MaxConns }, int32(7)},
		{"int64", "SECKILL_SEMAPHORE_CAPACITY", "100", func(c Config) any { return c.Semaphore.Capacity }, int64(100)},
		{"duration", "SECKILL_SEMAPHORE_TTL", "9s", func(c Config) any { return c.Semaphore.TTL }, 9 * time.Second},
		{"duration ms", "SECKILL_WORKER_FETCH_WAIT", "125ms", func(c Config) any { return c.Worker.FetchWait }, 125 * time.Millisecond},
		{"duration µs", "SECKILL_BUY_REDIS_LINGER", "150us", func(c Config) any { return c.Buy.RedisLinger }, 150 * time.Microsecond},
		{"float", "SECKILL_SENTINEL_BUY_QPS", "1234.5", func(c Config) any { return c.Sentinel.BuyQPS }, 1234.5},
		{"uint32", "SECKILL_SENTINEL_BREAKER_RETRY_MS", "4321", func(c Config) any { return c.Sentinel.BreakerRetryMs }, uint32(4321)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(shippedConfig, fakeEnv(map[string]string{tt.key: tt.value}))
			if err != nil {
				t.Fatalf("%s=%q: %v", tt.key, tt.value, err)
			}
			if got := tt.got(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%s=%q: got %#v, want %#v", tt.key, tt.value, got, tt.want)
			}
			// Nothing else moved.
			changed := diffConfig(cfg, defaultConfig())
			if n := strings.Count(changed, "\n"); n != 1 {
				t.Fatalf("%s changed %d settings, want 1:\n%s", tt.key, n, changed)
			}
		})
	}
}

// TestConfigInvalidStops runs the real command line: a bad setting stops the
// program before it does anything, with a message naming the setting.
func TestConfigInvalidStops(t *testing.T) {
	unknownKey := filepath.Join(t.TempDir(), "unknown.yaml")
	if err := os.WriteFile(unknownKey, []byte("http:\n  adress: \":8080\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badType := filepath.Join(t.TempDir(), "badtype.yaml")
	if err := os.WriteFile(badType, []byte("semaphore:\n  ttl: soon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"bad duration", nil, map[string]string{"SECKILL_SEMAPHORE_TTL": "6 seconds"},
			[]string{"SECKILL_SEMAPHORE_TTL", "6 seconds"}},
		{"bad int", nil, map[string]string{"SECKILL_REDIS_DB": "one"}, []string{"SECKILL_REDIS_DB"}},
		{"bad float", nil, map[string]string{"SECKILL_SENTINEL_BUY_QPS": "fast"}, []string{"SECKILL_SENTINEL_BUY_QPS"}},
		{"negative uint32", nil, map[string]string{"SECKILL_SENTINEL_BREAKER_WINDOW_MS": "-1"},
			[]string{"SECKILL_SENTINEL_BREAKER_WINDOW_MS"}},
		{"short auth secret", nil, map[string]string{"SECKILL_AUTH_SECRET": "too-short"}, []string{"auth.secret", "32"}},
		{"short payment secret", nil, map[string]string{"SECKILL_PAYMENT_SECRET": "x"}, []string{"payment.secret"}},
		{"block > capacity", nil, map[string]string{"SECKILL_SEMAPHORE_CAPACITY": "10", "SECKILL_SEMAPHORE_BLOCK": "11"},
			[]string{"semaphore.block"}},
		{"semaphore ttl too short", nil, map[string]string{"SECKILL_SEMAPHORE_TTL": "500ms"}, []string{"semaphore.ttl"}},
		{"duplicate window too short", nil, map[string]string{"SECKILL_NATS_DUPLICATE_WINDOW": "1m"},
			[]string{"nats.duplicate_window"}},
		{"linger too long", nil, map[string]string{"SECKILL_BUY_REDIS_LINGER": "50ms"}, []string{"buy.redis_linger"}},
		{"bad durability", nil, map[string]string{"SECKILL_REDIS_DURABILITY": "sometimes"}, []string{"redis.durability"}},
		{"no wait replicas", nil, map[string]string{"SECKILL_REDIS_WAIT_REPLICAS": "0"}, []string{"redis.wait_replicas"}},
		{"wait timeout 0", nil, map[string]string{"SECKILL_REDIS_WAIT_TIMEOUT": "0s"}, []string{"redis.wait_timeout"}},
		{"wait timeout past the read timeout", nil, map[string]string{"SECKILL_REDIS_WAIT_TIMEOUT": "600ms"}, []string{"redis.wait_timeout"}},
		{"bad log level", nil, map[string]string{"SECKILL_LOG_LEVEL": "loud"}, []string{"log.level"}},
		{"unknown YAML key", []string{"--config", unknownKey}, nil, []string{"adress"}},
		{"bad YAML value", []string{"--config", badType}, nil, []string{badType}},
		{"missing file", []string{"--config", filepath.Join(t.TempDir(), "nope.yaml")}, nil, []string{"nope.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"token", "--admin"}, tt.args...)
			err := run(context.Background(), args, &stdout, &stderr, fakeEnv(tt.env))
			if err == nil {
				t.Fatalf("run %v with %v: no error; stdout %q", args, tt.env, stdout.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("printed %q despite the bad config", stdout.String())
			}
		})
	}
}

// TestConfigErrorHidesSecret: a rejected secret is named, never echoed back.
func TestConfigErrorHidesSecret(t *testing.T) {
	const leaked = "hunter2-short"
	err := run(context.Background(), []string{"token", "--admin"}, &bytes.Buffer{}, &bytes.Buffer{},
		fakeEnv(map[string]string{"SECKILL_AUTH_SECRET": leaked}))
	if err == nil {
		t.Fatal("short secret accepted")
	}
	if strings.Contains(err.Error(), leaked) {
		t.Fatalf("error %q leaks the secret", err)
	}
}

// TestConfigFileErrorHidesValue: a value of the wrong type in the file (it
// may be a secret written under the wrong key) is located by line, never
// echoed back. It depends on the YAML library quoting values in `…`, so it
// guards a library upgrade.
func TestConfigFileErrorHidesValue(t *testing.T) {
	const leaked = "hunter2-in-the-wrong-place"
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("semaphore:\n  ttl: "+leaked+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadConfig(path, fakeEnv(nil))
	if err == nil {
		t.Fatal("a string accepted as semaphore.ttl")
	}
	if strings.Contains(err.Error(), leaked) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("error %q: want the line named and the value hidden", err)
	}
}

func TestConfigRedacted(t *testing.T) {
	cfg := defaultConfig()
	cfg.Auth.Secret = "auth-secret-0123456789abcdef0123456789"
	cfg.Payment.Secret = "pay-secret-0123456789abcdef0123456789"
	cfg.Postgres.DSN = "postgres://app:pgpass@db:5432/seckill"
	cfg.Redis.Password = "redispass"
	cfg.NATS.URL = "nats://user:natspass@nats:4222"
	orig := cfg

	red := cfg.Redacted()
	for name, got := range map[string]string{
		"auth.secret": red.Auth.Secret, "payment.secret": red.Payment.Secret,
		"postgres.dsn": red.Postgres.DSN, "redis.password": red.Redis.Password, "nats.url": red.NATS.URL,
	} {
		if got != "***" {
			t.Errorf("Redacted().%s = %q, want ***", name, got)
		}
	}
	if !reflect.DeepEqual(cfg, orig) {
		t.Fatalf("Redacted changed the original:\n%s", diffConfig(cfg, orig))
	}
	// Everything that is not a secret is kept, so the log stays useful.
	red.Auth.Secret, red.Payment.Secret, red.Postgres.DSN = orig.Auth.Secret, orig.Payment.Secret, orig.Postgres.DSN
	red.Redis.Password, red.NATS.URL = orig.Redis.Password, orig.NATS.URL
	if !reflect.DeepEqual(red, orig) {
		t.Fatalf("Redacted changed non-secret settings:\n%s", diffConfig(red, orig))
	}

	// Empty secrets stay empty: "***" would suggest one is set.
	empty := defaultConfig().Redacted()
	if empty.Redis.Password != "" || empty.NATS.URL != "" {
		t.Errorf("empty secrets redacted to %q / %q, want empty", empty.Redis.Password, empty.NATS.URL)
	}

	// Every field tagged secret is one the test knows about: a new secret
	// setting must be added above.
	var secrets []string
	for _, k := range leafKeys(reflect.TypeOf(Config{}), "") {
		section, name, _ := strings.Cut(k, ".")
		sf, _ := fieldByYAML(reflect.TypeOf(Config{}), section)
		ff, _ := fieldByYAML(sf.Type, name)
		if ff.Tag.Get("secret") == "true" {
			secrets = append(secrets, k)
		}
	}
	want := []string{"redis.password", "postgres.dsn", "nats.url", "auth.secret", "payment.secret"}
	if !reflect.DeepEqual(secrets, want) {
		t.Errorf("secret settings = %v, want %v", secrets, want)
	}
}

func fieldByYAML(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("yaml") == name {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// TestConfigLoggedRedacted: the config serve logs at start is the redacted one.
func TestConfigLoggedRedacted(t *testing.T) {
	var buf bytes.Buffer
	cfg := defaultConfig()
	cfg.Postgres.DSN = "postgres://app:pgpass@db:5432/seckill"
	log := newLogger(&buf, LogConfig{Level: "info", Format: "json"})
	log.Info("starting seckill", "config", cfg.Redacted())
	if strings.Contains(buf.String(), "pgpass") || strings.Contains(buf.String(), devSecret) {
		t.Fatalf("log line leaks a secret: %s", buf.String())
	}
}
