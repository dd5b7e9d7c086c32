package stock_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestRestockReplicaDurability: under DurabilityReplica a restock is
// confirmed with WAIT on its master like a buy. Where the replicas WAIT
// asks for are missing (a single Redis, or 2 on a cluster of 1 replica
// per master) Restock and RestockMany fail with ErrNotReplicated, and a
// retry once they are there returns the units exactly once.
func TestRestockReplicaDurability(t *testing.T) {
	t.Parallel()
	cases := []struct {
		top      stocktest.Topology
		replicas int
		ok       bool
	}{
		{stocktest.Cluster, 1, true},
		{stocktest.Cluster, 2, false},
		{stocktest.Single, 1, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.top, tc.replicas), func(t *testing.T) {
			t.Parallel()
			rdb, keys := stocktest.Open(t, tc.top)
			ctx := t.Context()
			plain := stock.NewStore(rdb, keys)
			// Where the replicas are there, a timeout no loaded machine
			// reaches; where they are not, a short one.
			timeout := 20 * time.Millisecond
			if tc.ok {
				timeout = 5 * time.Second
			}
			s := stock.NewStore(rdb, keys, stock.WithDurability(stock.Durability{
				Mode: stock.DurabilityReplica, Replicas: tc.replicas, Timeout: timeout}))
			var reqs []stock.RestockRequest
			for iid := int64(1); iid <= 6; iid++ {
				m := shardMeta(1, iid)
				m.Total = 10
				if _, err := plain.Warm(ctx, m); err != nil {
					t.Fatal(err)
				}
				for u := int64(1); u <= 2; u++ {
					res, err := plain.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: iid, UserID: u, OrderID: newOrderID(), Quantity: 1})
					if err != nil {
						t.Fatal(err)
					}
					reqs = append(reqs, stock.RestockRequest{ActivityID: 1, ItemID: iid, UserID: u, OrderID: res.OrderID, Quantity: 1})
				}
			}
			check := func(what string, err error) {
				t.Helper()
				if tc.ok && err != nil {
					t.Errorf("%s: %v", what, err)
				}
				if !tc.ok && !errors.Is(err, stock.ErrNotReplicated) {
					t.Errorf("%s: %v, want ErrNotReplicated", what, err)
				}
			}
			_, err := s.Restock(ctx, reqs[0])
			check("Restock", err)
			for i, err := range s.RestockMany(ctx, reqs[1:]) {
				check(fmt.Sprintf("RestockMany[%d]", i), err)
			}
			// A retry: confirmed where the replicas are, refused again
			// where they are not; the units came back once either way.
			for i, err := range s.RestockMany(ctx, reqs) {
				check(fmt.Sprintf("retried RestockMany[%d]", i), err)
			}
			for iid := int64(1); iid <= 6; iid++ {
				snap, err := plain.Snapshot(ctx, 1, iid)
				if err != nil {
					t.Fatal(err)
				}
				if snap.Available != 10 || snap.Held != 0 {
					t.Errorf("item %d after returns and retries: available %d, held %d; want 10 and 0", iid, snap.Available, snap.Held)
				}
			}
		})
	}
}

// TestDuplicateRestockIsReplicated: a restock of an order already returned
// writes to the replication stream, so the WAIT after a retry covers the
// earlier return, which may not have reached the replicas yet. A private
// master (no replica pings: nothing else moves its offset) and replica.
func TestDuplicateRestockIsReplicated(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	master := stocktest.StartServer(t, "--repl-ping-replica-period", "3600")
	replica := stocktest.StartServer(t)
	mc, rc := master.Client(), replica.Client()
	t.Cleanup(func() { _ = mc.Close(); _ = rc.Close() })
	host, port, _ := strings.Cut(master.Addr, ":")
	if err := rc.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 20*time.Second, func() bool {
		return infoValue(rc.Info(ctx, "replication").Val(), "master_link_status") == "up"
	})
	keys := stock.Keys{Prefix: "dup"}
	s := stock.NewStore(mc, keys)
	if _, err := s.Warm(ctx, shardMeta(1, 1)); err != nil {
		t.Fatal(err)
	}
	res, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 1, OrderID: newOrderID(), Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	req := stock.RestockRequest{ActivityID: 1, ItemID: 1, UserID: 1, OrderID: res.OrderID, Quantity: 1}
	if r, err := s.Restock(ctx, req); err != nil || !r.Restocked {
		t.Fatalf("restock: %+v (%v)", r, err)
	}
	offset := func() string { return infoValue(mc.Info(ctx, "replication").Val(), "master_repl_offset") }
	before := offset()
	if r, err := s.Restock(ctx, req); err != nil || r.Restocked {
		t.Fatalf("duplicate restock: %+v (%v)", r, err)
	}
	if after := offset(); after == before {
		t.Fatalf("a duplicate restock left the master's replication offset at %s: a WAIT after it confirms nothing", after)
	}
}
