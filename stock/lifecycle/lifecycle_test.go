package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/seckill/stock/lifecycle"
)

// fakeClock hands every wait the loop asks for to the test, which decides
// when it ends: the loop advances only when the test says so.
type fakeClock struct {
	asked chan time.Duration
	fire  chan time.Time
	now   atomic.Int64 // ns; advanced by tests to model a slow pass
}

func newFakeClock() *fakeClock {
	return &fakeClock{asked: make(chan time.Duration), fire: make(chan time.Time)}
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.asked <- d
	return c.fire
}

func (c *fakeClock) Now() time.Time { return time.Unix(0, c.now.Load()) }

// next returns the wait the loop asked for next.
func (c *fakeClock) next(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.asked:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the loop never asked to wait")
		return 0
	}
}

// tick ends the wait the loop is in.
func (c *fakeClock) tick() { c.fire <- time.Time{} }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func waitDone(t *testing.T, s *lifecycle.Service) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("service did not stop")
	}
}

func TestPassesRunEveryInterval(t *testing.T) {
	clk := newFakeClock()
	var passes atomic.Int32
	s := lifecycle.New(lifecycle.Config{Name: "t", Every: time.Second, Log: quiet(), Clock: clk},
		func(context.Context) error { passes.Add(1); return nil })
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if d := clk.next(t); d != time.Second {
			t.Fatalf("wait after pass %d = %v, want 1s", i, d)
		}
		if got := passes.Load(); got != int32(i) {
			t.Fatalf("passes = %d before tick %d, want %d", got, i, i)
		}
		clk.tick()
	}
	clk.next(t)
	s.Stop(t.Context())
	if got := passes.Load(); got != 4 {
		t.Fatalf("passes = %d, want 4", got)
	}
	if err := s.Start(t.Context()); !errors.Is(err, lifecycle.ErrAlreadyStarted) {
		t.Fatalf("second Start = %v, want ErrAlreadyStarted", err)
	}
}

func TestBackoffGrowsIsBoundedAndResets(t *testing.T) {
	clk := newFakeClock()
	fail := atomic.Bool{}
	fail.Store(true)
	s := lifecycle.New(lifecycle.Config{Name: "t", Every: time.Second, Log: quiet(), Clock: clk,
		Backoff: lifecycle.Backoff{Min: 100 * time.Millisecond, Max: 800 * time.Millisecond}},
		func(context.Context) error {
			if fail.Load() {
				return errors.New("down")
			}
			return nil
		})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.StopAndCancel()
	// Each wait is base + jitter in [0, base/5).
	for i, base := range []time.Duration{100, 200, 400, 800, 800, 800} {
		base *= time.Millisecond
		d := clk.next(t)
		if d < base || d >= base+base/5 {
			t.Fatalf("wait after failure %d = %v, want in [%v, %v)", i+1, d, base, base+base/5)
		}
		if i == 5 {
			fail.Store(false)
		}
		clk.tick()
	}
	if d := clk.next(t); d != time.Second {
		t.Fatalf("wait after a success = %v, want Every (1s): the backoff must reset", d)
	}
	fail.Store(true)
	clk.tick()
	if d := clk.next(t); d < 100*time.Millisecond || d >= 120*time.Millisecond {
		t.Fatalf("first wait after a new failure = %v, want Min again", d)
	}
}

func TestSoftStopFinishesThePass(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var cancelled atomic.Bool
	var passes atomic.Int32
	s := lifecycle.New(lifecycle.Config{Name: "t", Log: quiet()}, func(ctx context.Context) error {
		if passes.Add(1) > 1 {
			t.Error("a pass started after Stop")
		}
		close(entered)
		<-release
		cancelled.Store(ctx.Err() != nil)
		return nil
	})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-entered
	stopped := make(chan struct{})
	go func() { s.Stop(t.Context()); close(stopped) }()
	<-s.Stopping()
	select {
	case <-stopped:
		t.Fatal("Stop returned while the pass was running")
	case <-s.Done():
		t.Fatal("loop ended while the pass was running")
	default:
	}
	close(release)
	<-stopped
	if cancelled.Load() {
		t.Fatal("a soft stop cancelled the pass")
	}
}

func TestHardStopCancelsThePass(t *testing.T) {
	for _, how := range []string{"StopAndCancel", "Stop with expired ctx", "Start ctx cancelled"} {
		t.Run(how, func(t *testing.T) {
			entered := make(chan struct{})
			var sawCancel atomic.Bool
			s := lifecycle.New(lifecycle.Config{Name: "t", Log: quiet()}, func(ctx context.Context) error {
				close(entered)
				<-ctx.Done()
				sawCancel.Store(true)
				return ctx.Err()
			})
			startCtx, cancelStart := context.WithCancel(t.Context())
			defer cancelStart()
			if err := s.Start(startCtx); err != nil {
				t.Fatal(err)
			}
			<-entered
			switch how {
			case "StopAndCancel":
				s.StopAndCancel()
			case "Stop with expired ctx":
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				s.Stop(ctx)
			default:
				cancelStart()
				waitDone(t, s)
			}
			if !sawCancel.Load() {
				t.Fatal("the pass was not cancelled")
			}
			if err := s.Err(); err != nil {
				t.Fatalf("Err after a stop = %v, want nil", err)
			}
		})
	}
}

func TestHaltEndsTheService(t *testing.T) {
	lost := errors.New("lease lost")
	var passes atomic.Int32
	var stopped atomic.Bool
	s := lifecycle.New(lifecycle.Config{Name: "t", Log: quiet(), AfterStop: func() { stopped.Store(true) }},
		func(context.Context) error {
			passes.Add(1)
			return lifecycle.Halt(fmt.Errorf("renew: %w", lost))
		})
	if err := s.Run(t.Context()); !errors.Is(err, lost) {
		t.Fatalf("Run = %v, want the halting error", err)
	}
	if passes.Load() != 1 || !stopped.Load() {
		t.Fatalf("passes = %d, AfterStop ran = %v; want 1, true", passes.Load(), stopped.Load())
	}
}

func TestStopBeforeStartAndTwice(t *testing.T) {
	s := lifecycle.New(lifecycle.Config{Name: "t"}, func(context.Context) error { return nil })
	s.Stop(t.Context()) // never started: returns at once
	s.StopAndCancel()
	clk := newFakeClock()
	s = lifecycle.New(lifecycle.Config{Name: "t", Every: time.Second, Clock: clk, Log: quiet()},
		func(context.Context) error { return nil })
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	clk.next(t)
	s.Stop(t.Context())
	s.Stop(t.Context())
	s.StopAndCancel()
	waitDone(t, s)
}

// The error is logged once per change of message, and recovery once.
func TestErrorsLoggedOncePerChange(t *testing.T) {
	clk := newFakeClock()
	var h countHandler
	errs := []error{errors.New("a"), errors.New("a"), errors.New("b"), nil, nil, errors.New("b")}
	var i atomic.Int32
	s := lifecycle.New(lifecycle.Config{Name: "t", Every: time.Second, Log: slog.New(&h), Clock: clk},
		func(context.Context) error { return errs[i.Add(1)-1] })
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range len(errs) - 1 {
		clk.next(t)
		clk.tick()
	}
	clk.next(t)
	s.Stop(t.Context())
	// a, b, recovered, b
	if w, in := h.warn.Load(), h.info.Load(); w != 3 || in != 1 {
		t.Fatalf("warnings = %d, infos = %d; want 3, 1", w, in)
	}
}

type countHandler struct{ warn, info atomic.Int32 }

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	switch r.Level {
	case slog.LevelWarn:
		h.warn.Add(1)
	case slog.LevelInfo:
		h.info.Add(1)
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// A ticker left to the defaults retries at its interval (plus jitter) and
// never waits longer: lease renewals depend on it.
func TestTickerBackoffDefaultsToInterval(t *testing.T) {
	clk := newFakeClock()
	s := lifecycle.New(lifecycle.Config{Name: "t", Every: time.Second, Log: quiet(), Clock: clk},
		func(context.Context) error { return errors.New("down") })
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.StopAndCancel()
	for i := range 4 {
		if d := clk.next(t); d < time.Second || d >= 1200*time.Millisecond {
			t.Fatalf("wait after failure %d = %v, want in [1s, 1.2s)", i+1, d)
		}
		clk.tick()
	}
	clk.next(t)
}

// A ticker's interval runs from the start of a pass: a pass that took 700ms
// to fail (a lease renewal timing out) is retried 300ms after it ended, not
// a whole interval (plus jitter) later, so a lease renewed every TTL/3 is
// not pushed past its local deadline by one slow failure.
func TestSlowFailingPassKeepsTheTickerCadence(t *testing.T) {
	clk := newFakeClock()
	var passes atomic.Int32
	s := lifecycle.New(lifecycle.Config{Name: "t", Every: time.Second, Log: quiet(), Clock: clk},
		func(context.Context) error {
			passes.Add(1)
			clk.now.Add(int64(700 * time.Millisecond))
			return errors.New("renewal timed out")
		})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if d := clk.next(t); d != 300*time.Millisecond {
			t.Fatalf("wait after slow failure %d = %v, want 300ms", i, d)
		}
		clk.tick()
	}
	clk.next(t)
	s.StopAndCancel()
	waitDone(t, s)
}

// Stop before the loop's first pass: no pass runs at all.
func TestStopBeforeFirstPassRunsNone(t *testing.T) {
	var passes atomic.Int32
	s := lifecycle.New(lifecycle.Config{Name: "t", Every: time.Second, Log: quiet()},
		func(context.Context) error { passes.Add(1); return nil })
	s.Stop(t.Context()) // not started: returns at once, and marks it stopping
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitDone(t, s)
	if n := passes.Load(); n != 0 {
		t.Fatalf("%d passes after a stop that came before the start", n)
	}
}
