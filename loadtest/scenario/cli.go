package scenario

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Exit codes of Main and of the chaos drill.
const (
	ExitPass  = 0
	ExitFail  = 1 // an invariant or scenario check failed
	ExitError = 2 // bad usage, or the run could not be carried out
)

// Main runs scenario name with the command-line flags args and returns the
// process's exit code (ExitPass, ExitFail or ExitError). env looks up the
// environment (os.LookupEnv) for the settings a flag leaves unset.
func Main(ctx context.Context, name string, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	if _, ok := scenarios[name]; !ok {
		fmt.Fprintf(stderr, "loadtest: unknown scenario %q\n", name)
		return ExitError
	}
	cfg, err := parseFlags(name, args, stderr, env)
	if errors.Is(err, flag.ErrHelp) {
		return ExitPass
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return ExitError
	}
	res, err := runScenario(ctx, cfg, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest %s: %v\n", name, err)
		return ExitError
	}
	if failed := res.Failed(); len(failed) > 0 {
		fmt.Fprintf(stderr, "loadtest %s: FAILED: %s\n", name, strings.Join(failed, "; "))
		return ExitFail
	}
	return ExitPass
}

// Usage lists the scenarios with a line each.
func Usage(w io.Writer) {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, scenarios[n].About())
	}
}

// parseFlags builds the Config of scenario from flags, then the environment,
// then the defaults; numbers left at zero take the scenario's defaults.
func parseFlags(scenario string, args []string, stderr io.Writer, env func(string) (string, bool)) (Config, error) {
	cfg := Config{Scenario: scenario}
	fs := flag.NewFlagSet("loadtest "+scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Settings that may come from the environment default to "" here and
	// are resolved after parsing, so -h never prints a secret from the env.
	fromEnv := []struct {
		dst       *string
		flag, env string
		def, help string
	}{
		{&cfg.BaseURL, "base-url", "SECKILL_LOADTEST_BASE_URL", "http://127.0.0.1:8080", "gateway URL, loopback only"},
		{&cfg.AuthSecret, "auth-secret", "SECKILL_AUTH_SECRET", devSecret, "JWT secret the gateway verifies with"},
		{&cfg.PaymentSecret, "payment-secret", "SECKILL_PAYMENT_SECRET", devSecret, "payment callback HMAC secret"},
		{&cfg.PostgresDSN, "postgres-dsn", "SECKILL_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/seckill?sslmode=disable", "the gateway's database, read to verify"},
		{&cfg.RedisAddr, "redis-addr", "SECKILL_REDIS_ADDR", "127.0.0.1:6379", "the gateway's Redis, read to verify"},
		{&cfg.RedisPrefix, "redis-prefix", "SECKILL_REDIS_KEY_PREFIX", "sk", "the gateway's Redis key prefix"},
	}
	for _, e := range fromEnv {
		def := e.def
		if e.def == devSecret {
			def = "the dev secret of configs/seckill.yaml"
		}
		fs.StringVar(e.dst, e.flag, "", fmt.Sprintf("%s (default $%s, else %s)", e.help, e.env, def))
	}
	fs.IntVar(&cfg.Rate, "rate", 0, "planned requests per second; retries and follow-ups come on top (0: scenario default)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long planned requests are sent (0: scenario default)")
	fs.IntVar(&cfg.Users, "users", 0, "distinct buyers (0: one per planned request; retry: rate×duration/2.5 logical buyers)")
	fs.Int64Var(&cfg.Stock, "stock", 0, "units of the item (0: scenario default)")
	fs.Int64Var(&cfg.Limit, "limit", 0, "per-user limit of the activity (0: 1; retry: 2, so only the Idempotency-Key stops a second order)")
	fs.DurationVar(&cfg.PayTimeout, "pay-timeout", 0, "payment window of the activity, whole seconds (0: 900s; lifecycle: 3s)")
	fs.Float64Var(&cfg.PayShare, "pay-share", 0.4, "lifecycle: share of accepted orders paid by signed callback")
	fs.Float64Var(&cfg.CancelShare, "cancel-share", 0.3, "lifecycle: share of accepted orders cancelled by their buyer; the rest time out")
	fs.Float64Var(&cfg.AbandonShare, "abandon-share", 0.1, "retry: share of first sends whose client stops waiting early (a lost response)")
	fs.DurationVar(&cfg.AbandonAfter, "abandon-after", time.Millisecond, "retry: an abandoning client gives up after a random time up to this")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "client timeout per request")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 1000, "concurrent requests at most (vegeta workers)")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 30*time.Second, "how long to wait for the pipeline to drain before verifying")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the scenarios' random choices")
	fs.StringVar(&cfg.Out, "out", "", "output folder (default loadtest/out/<scenario>-<timestamp>)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, e := range fromEnv {
		if *e.dst == "" {
			*e.dst = e.def
			if v, ok := env(e.env); ok && v != "" {
				*e.dst = v
			}
		}
	}
	if cfg.Out == "" {
		cfg.Out = DefaultOut(scenario, time.Now())
	}
	return prepare(cfg)
}

// Known reports whether name is a scenario.
func Known(name string) bool { _, ok := scenarios[name]; return ok }
