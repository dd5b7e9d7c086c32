package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order/worker"
)

// Every published order becomes exactly one row, its reservation is
// cleared, and its payment timer is armed before the message is acked.
func TestPersisterPersistsClearsAndArmsTimers(t *testing.T) {
	t.Parallel()
	f := setup(t, opts{})
	aid, iid := f.publish(t, 100, time.Minute)
	rs := f.buy(t, aid, iid, 1, 40)
	f.publishOrders(t, rs)
	f.publishOrders(t, rs[:10]) // a gateway retry: deduplicated by JetStream
	f.persistAll(t, 40)
	if n := f.countRows(t, "activity_id = $1 AND status = 'PENDING'", aid); n != 40 {
		t.Fatalf("%d PENDING rows, want 40", n)
	}
	if s := f.snapshot(t, aid, iid); len(s.Reservations) != 0 || s.Available != 60 || s.Held != 40 {
		t.Fatalf("after persisting: %+v, want no reservation left, 60 available, 40 held", s)
	}
	// One timer per order waits in the timeout stream.
	st, err := f.broker.JS.Stream(f.ctx, f.broker.Config().Stream+"_TIMEOUTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 40 {
		t.Fatalf("%d timers armed, want 40", info.State.Msgs)
	}
	// Nothing is left to persist: the batch was acked.
	f.requireDrained(t, "want the batch acked")
}

// requireDrained fails the test unless the persister consumer comes to have
// nothing pending and nothing unacked (worker.OrdersDrained, recovery's own
// check). The persister's acks are sent without waiting for the server's
// reply, so the consumer may count a batch unacked for a moment after
// RunOnce returned: the check waits for them to land.
func (f *fixture) requireDrained(t *testing.T, why string) {
	t.Helper()
	cluster.Eventually(t, 5*time.Second, func() error {
		drained, err := worker.OrdersDrained(f.broker, "persister")(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !drained {
			return fmt.Errorf("the persister consumer has messages pending or unacked; %s", why)
		}
		return nil
	})
}

// An undecodable message is terminated, not retried forever, and does not
// hold back the orders beside it.
func TestPersisterTerminatesPoison(t *testing.T) {
	t.Parallel()
	f := setup(t, opts{})
	aid, iid := f.publish(t, 10, time.Minute)
	if _, err := f.broker.JS.Publish(f.ctx, f.broker.Config().Subject+".created.poison", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	f.publishOrders(t, f.buy(t, aid, iid, 1, 3))
	f.persistAll(t, 3)
	f.requireDrained(t, "want the poison terminated")
}
