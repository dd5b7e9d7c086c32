package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrAlreadyStarted is returned by Start on a service that was started before.
var ErrAlreadyStarted = errors.New("lifecycle: already started")

// Backoff bounds the wait after failing passes.
type Backoff struct {
	Min time.Duration // wait after the first failure (default: Every, or 100ms when Every is 0)
	Max time.Duration // the wait never grows beyond this plus jitter (default: Min for a ticker, max(Min, 2s) for a consumer)
}

// Config describes one service.
type Config struct {
	// Name labels the service in logs ("sweeper", "stock.semaphore").
	Name string
	// Every is the pause between successful passes. 0 means passes run back
	// to back (a consumer whose pass blocks waiting for messages).
	Every time.Duration
	// Backoff is the wait after failing passes.
	Backoff Backoff
	// Log receives the once-per-change error lines; nil means slog.Default().
	Log *slog.Logger
	// Clock is time for the loop; nil means the real clock. Tests inject one.
	Clock Clock
	// AfterStop, when set, runs once after the last pass, before Stop
	// returns: a consumer hands its prefetched messages back here.
	AfterStop func()
}

// Clock is the loop's view of time: After is time.After, Now is time.Now.
type Clock interface {
	After(d time.Duration) <-chan time.Time
	Now() time.Time
}

type realClock struct{}

func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (realClock) Now() time.Time                         { return time.Now() }

// Service runs a pass function in a loop between Start and Stop. Its zero
// value is not usable; build it with New. A Service is started at most once.
type Service struct {
	cfg  Config
	pass func(context.Context) error

	mu       sync.Mutex
	started  bool
	stopSoft chan struct{} // closed by Stop: no new pass
	hard     context.CancelFunc
	done     chan struct{} // closed when the loop has returned
	err      error         // the halting error, if any
	softOnce sync.Once
}

// New returns a service that runs pass per cfg. Every must not be negative.
func New(cfg Config, pass func(context.Context) error) *Service {
	if cfg.Every < 0 {
		panic(fmt.Sprintf("lifecycle: %s: negative interval %v", cfg.Name, cfg.Every))
	}
	if cfg.Backoff.Min <= 0 {
		cfg.Backoff.Min = cfg.Every
		if cfg.Backoff.Min <= 0 {
			cfg.Backoff.Min = 100 * time.Millisecond
		}
	}
	if cfg.Backoff.Max < cfg.Backoff.Min {
		// A consumer backs off up to 2s; a ticker retries at its interval
		// unless told otherwise: a lease renewal that waited longer than its
		// interval would let the lease lapse.
		cfg.Backoff.Max = cfg.Backoff.Min
		if cfg.Every == 0 {
			cfg.Backoff.Max = max(cfg.Backoff.Min, 2*time.Second)
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	return &Service{cfg: cfg, pass: pass, stopSoft: make(chan struct{}), done: make(chan struct{})}
}

// Name is the service's name.
func (s *Service) Name() string { return s.cfg.Name }

// Start runs the loop in a goroutine and returns at once; the first pass
// starts immediately. Cancelling ctx is a hard stop.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("%w: %s", ErrAlreadyStarted, s.cfg.Name)
	}
	s.started = true
	passCtx, cancel := context.WithCancel(ctx)
	s.hard = cancel
	go s.loop(passCtx)
	return nil
}

// Run starts the service and blocks until it has stopped; it returns what
// Err returns. Cancelling ctx is a hard stop.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-s.done
	return s.Err()
}

// Stop is the soft stop: no new pass starts, the current one finishes, and
// Stop returns when the loop has returned. If ctx ends first, the stop turns
// hard (the pass is cancelled) and Stop still waits for the loop. Stopping a
// service that never started returns at once.
func (s *Service) Stop(ctx context.Context) {
	if !s.markStopping() {
		return
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		s.hard()
		<-s.done
	}
}

// StopAndCancel is the hard stop: the current pass sees its context
// cancelled, and StopAndCancel returns when the loop has returned.
func (s *Service) StopAndCancel() {
	if !s.markStopping() {
		return
	}
	s.hard()
	<-s.done
}

// markStopping closes stopSoft once and reports whether the loop was started.
func (s *Service) markStopping() bool {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	s.softOnce.Do(func() { close(s.stopSoft) })
	return started
}

// Stopping is closed once Stop or StopAndCancel was called: a long pass may
// watch it to end early at a safe point.
func (s *Service) Stopping() <-chan struct{} { return s.stopSoft }

// Done is closed when the loop has returned.
func (s *Service) Done() <-chan struct{} { return s.done }

// Err is the error that halted the service (see Halt), or nil after a stop.
func (s *Service) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Service) loop(ctx context.Context) {
	defer close(s.done)
	defer s.hard()
	if s.cfg.AfterStop != nil {
		defer s.cfg.AfterStop()
	}
	var lastErr string
	failures := 0
	if !s.wait(ctx, 0) {
		return // stopped before the first pass
	}
	for {
		start := s.cfg.Clock.Now()
		err := s.pass(ctx)
		if ctx.Err() != nil {
			return // hard stop: the pass's error is the cancellation
		}
		var h halt
		if errors.As(err, &h) {
			// Not logged here: the caller gets it from Run or Err and says
			// what it means (a lost lease stops buys).
			s.mu.Lock()
			s.err = h.err
			s.mu.Unlock()
			return
		}
		wait := s.cfg.Every
		if err != nil {
			failures++
			// Log a repeating error once per change, not once per pass.
			if msg := err.Error(); msg != lastErr {
				s.cfg.Log.Warn("background pass failed", "service", s.cfg.Name, "err", err)
				lastErr = msg
			}
			wait = s.backoff(failures)
		} else {
			if lastErr != "" {
				s.cfg.Log.Info("background pass recovered", "service", s.cfg.Name)
				lastErr = ""
			}
			failures = 0
		}
		if s.cfg.Every > 0 {
			// A ticker's interval runs from the start of a pass, as the
			// old ticker loop's did: a slow pass (a renewal that timed out)
			// must not push the next one past a lease's local deadline.
			wait -= s.cfg.Clock.Now().Sub(start)
		}
		if !s.wait(ctx, wait) {
			return
		}
	}
}

// wait pauses d (d = 0 still checks for a stop) and reports whether the
// loop should go on.
func (s *Service) wait(ctx context.Context, d time.Duration) bool {
	select {
	case <-s.stopSoft:
		return false
	case <-ctx.Done():
		return false
	default:
	}
	if d <= 0 {
		return true
	}
	select {
	case <-s.stopSoft:
		return false
	case <-ctx.Done():
		return false
	case <-s.cfg.Clock.After(d):
		return true
	}
}

// backoff is the wait after the n-th consecutive failure: Min·2^(n-1), at
// most Max, plus jitter of up to a fifth of what it grew beyond Min. The
// first retry is never later than Min: for a ticker that is its interval,
// which a lease renewal must keep to (a jittered retry past it could let
// the lease lapse).
func (s *Service) backoff(n int) time.Duration {
	d := s.cfg.Backoff.Min
	for i := 1; i < n && d < s.cfg.Backoff.Max; i++ {
		d *= 2
	}
	d = min(d, s.cfg.Backoff.Max)
	if j := int64((d - s.cfg.Backoff.Min) / 5); j > 0 {
		d += time.Duration(rand.Int64N(j))
	}
	return d
}

// halt marks an error that ends the service instead of being retried.
type halt struct{ err error }

func (h halt) Error() string { return h.err.Error() }
func (h halt) Unwrap() error { return h.err }

// Halt wraps err so that a pass returning it ends the service: the loop
// logs it, stops, and Err reports err. Use it for errors no retry can mend.
func Halt(err error) error { return halt{err: err} }
