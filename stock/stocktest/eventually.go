package stocktest

import (
	"testing"
	"time"
)

// Eventually fails the test unless cond holds within the given time. It is
// the one way tests in seckill wait for something another goroutine or
// process does: the condition is the signal, checked every few
// milliseconds; nothing relies on a fixed sleep being long enough.
func Eventually(t testing.TB, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		<-tick.C
	}
}
