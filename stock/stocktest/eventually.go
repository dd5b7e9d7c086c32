package stocktest

import (
	"testing"
	"time"
)

// Eventually calls cond until it returns nil, failing the test with cond's
// last error if that has not happened within the given time. It is the one
// way tests wait for something another goroutine or process does (a timer
// firing, a lease renewing, a server accepting connections): it never
// sleeps longer than needed, and on a loaded machine it fails only past
// within, never because a fixed sleep was too short.
func Eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	wait := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}
