package scenario

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"
)

// devSecret is the dev default of auth.secret and payment.secret in
// configs/seckill.yaml, so a plain `make run` and a plain load test agree.
const devSecret = "dev-secret-change-me-0123456789abcdef"

// Config is one load-test run. Zero numbers mean "the scenario's default",
// filled in by the scenario before the run.
type Config struct {
	Scenario string

	BaseURL       string // the gateway; loopback only
	AuthSecret    string // mints the admin's and the buyers' JWTs
	PaymentSecret string // signs payment callbacks
	PostgresDSN   string // read-only: verification
	RedisAddr     string // read-only: verification; comma-separated = cluster
	RedisPrefix   string // the gateway's key prefix

	Rate     int           // planned requests per second; retries and follow-ups come on top
	Duration time.Duration // how long planned requests are sent
	Users    int           // distinct buyers; requests beyond reuse them round-robin
	Stock    int64         // units of the one item the run sells
	Limit    int64         // per-user limit of the activity

	PayTimeout   time.Duration // lifecycle: payment window of the activity
	PayShare     float64       // lifecycle: share of accepted orders that pay
	CancelShare  float64       // lifecycle: share of accepted orders the buyer cancels
	AbandonShare float64       // retry: share of first sends whose client gives up early
	AbandonAfter time.Duration // retry: they give up after a random time up to this

	Timeout      time.Duration // per request, client side
	MaxInFlight  int           // vegeta workers (and so concurrent requests) at most
	DrainTimeout time.Duration // how long to wait for the pipeline to settle
	Seed         uint64        // for the scenarios' random choices
	Out          string        // folder for results.bin, plot.html, report.txt
}

// Hard bounds: a load test is a bounded loop in count and time whatever the flags say.
const (
	maxRate     = 50_000
	maxDuration = 10 * time.Minute
	maxRequests = 2_000_000
)

// Validate checks the settings after the scenario's defaults are in.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := loopbackOnly(c.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if c.Rate < 1 || c.Rate > maxRate {
		bad("--rate must be between 1 and %d", maxRate)
	}
	if c.Duration <= 0 || c.Duration > maxDuration {
		bad("--duration must be between 0 and %v", maxDuration)
	}
	if n := float64(c.Rate) * c.Duration.Seconds(); n > maxRequests {
		bad("--rate × --duration is %.0f requests, more than %d", n, maxRequests)
	}
	if c.Users < 1 {
		bad("--users must be at least 1")
	}
	if c.Stock < 1 {
		bad("--stock must be at least 1")
	}
	if c.Limit < 1 {
		bad("--limit must be at least 1")
	}
	if c.PayTimeout < time.Second || c.PayTimeout%time.Second != 0 {
		bad("--pay-timeout must be whole seconds, at least 1s")
	}
	if c.PayShare < 0 || c.CancelShare < 0 || c.PayShare+c.CancelShare > 1 {
		bad("--pay-share and --cancel-share must be ≥ 0 and sum to at most 1")
	}
	if c.AbandonShare < 0 || c.AbandonShare > 1 || c.AbandonAfter <= 0 {
		bad("--abandon-share must be between 0 and 1, --abandon-after positive")
	}
	if c.Timeout <= 0 || c.DrainTimeout <= 0 {
		bad("--timeout and --drain-timeout must be positive")
	}
	if c.MaxInFlight < 1 {
		bad("--max-in-flight must be at least 1")
	}
	if len(c.AuthSecret) < 32 || len(c.PaymentSecret) < 32 {
		bad("--auth-secret and --payment-secret must be at least 32 characters (as the gateway requires)")
	}
	if c.Out == "" {
		bad("--out must not be empty")
	}
	return errors.Join(errs...)
}

// loopbackOnly refuses a base URL that is not on this machine: the load
// generator must never be pointed at someone else's server.
func loopbackOnly(base string) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--base-url %q is not an http(s) URL", base)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--base-url %q: load may only target loopback addresses (127.0.0.0/8, ::1, localhost)", base)
}

// DefaultOut is loadtest/out/<scenario>-<timestamp>, relative to the
// working directory (the repository root under `go run ./loadtest`).
func DefaultOut(scenario string, now time.Time) string {
	return filepath.Join("loadtest", "out", scenario+"-"+now.Format("20060102-150405"))
}
