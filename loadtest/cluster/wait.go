package cluster

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// pollEvery is how often WaitUntil and Eventually look again.
const pollEvery = 20 * time.Millisecond

// WaitUntil calls ok until it returns true, ctx ends or within passes, and
// reports whether ok returned true. It is the one polling loop of the tests
// and drills: a condition on another process's state (a port that listens,
// a row that appears) has no signal to wait on.
func WaitUntil(ctx context.Context, within time.Duration, ok func(context.Context) bool) bool {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		if ok(ctx) {
			return true
		}
		select {
		case <-ctx.Done():
			return ok(context.WithoutCancel(ctx))
		case <-t.C:
		}
	}
}

// Eventually fails the test unless cond holds within the given time. cond
// is either a func() bool or a func() error (nil means it holds, and the
// failure quotes the last error). It is the one way seckill's tests wait for
// something another goroutine or process does: the condition is the signal,
// checked every pollEvery, and nothing relies on a fixed sleep being long
// enough. cond runs on the test's goroutine, so it may call t.Fatal.
func Eventually[C func() bool | func() error](t testing.TB, within time.Duration, cond C) {
	t.Helper()
	check := func() error {
		switch c := any(cond).(type) {
		case func() bool:
			if !c() {
				return errors.New("condition not met")
			}
			return nil
		case func() error:
			return c()
		}
		panic("unreachable")
	}
	var last error
	if !WaitUntil(context.Background(), within, func(context.Context) bool {
		last = check()
		return last == nil
	}) {
		t.Fatalf("not within %v: %v", within, last)
	}
}

// TestLog is a writer that sends each write to t.Log, for the progress
// lines of a drill or scenario run inside a test.
func TestLog(t testing.TB) io.Writer { return testLog{t} }

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
