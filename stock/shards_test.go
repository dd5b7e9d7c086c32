package stock_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestSlotMatchesClusterKeyslot: stock.Slot is what Redis Cluster answers
// for seckill's keys and for the hash-tag edge cases.
func TestSlotMatchesClusterKeyslot(t *testing.T) {
	t.Parallel()
	rdb, keys := stocktest.NewCluster(t)
	ctx := t.Context()
	cases := []string{"", "a", "foo", "{}", "{}x", "x{}y", "{a", "a}", "{a}{b}", "}{a}", "{{a}}", "a{b}c{d}",
		keys.SemaphoreHolders("buy"), keys.Node(7), "123456789"}
	for i := int64(0); i < 200; i++ {
		cases = append(cases, keys.Item(i%3+1, i*7919), keys.Idempotency(1, i, i, "k{x}"))
	}
	for _, k := range cases {
		want, err := rdb.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := stock.Slot(k); int64(got) != want {
			t.Errorf("Slot(%q) = %d, CLUSTER KEYSLOT says %d", k, got, want)
		}
	}
}

// TestShardCheckFencesStaleState plays a server whose state was written by
// another server (its rid differs), three sold units looking available
// again: the shard check fences the item, buys are refused until it is
// rebuilt from the system of record, and a second check fences nothing.
func TestShardCheckFencesStaleState(t *testing.T) {
	t.Parallel()
	stocktest.ForEachTopology(t, func(t *testing.T, rdb redis.UniversalClient, keys stock.Keys) {
		s := stock.NewStore(rdb, keys)
		ctx := t.Context()
		meta := stock.ItemMeta{ActivityID: 1, ItemID: 1, Total: 10, PriceCents: 100,
			StartAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), PerUserLimit: 1, PayTimeout: time.Minute}
		if _, err := s.Warm(ctx, meta); err != nil {
			t.Fatal(err)
		}
		if n, err := s.CheckShards(ctx); err != nil || n != 0 {
			t.Fatalf("check after warm: fenced %d (%v), want 0", n, err)
		}
		for u := int64(1); u <= 3; u++ {
			if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: u, OrderID: 100 + u, Quantity: 1}); err != nil {
				t.Fatal(err)
			}
		}
		// The state of another server instance, three decrements lost.
		rdb.HSet(ctx, keys.Item(1, 1), "rid", "run-id-of-the-crashed-server")
		rdb.HIncrBy(ctx, keys.Item(1, 1), "stock", 3)
		rdb.HDel(ctx, keys.Buyers(1, 1), "1", "2", "3")

		// This server's run_id did not change, so the store skips the
		// scripts of a server it checked; another process (a new store)
		// checks them.
		if n, err := s.CheckShards(ctx); err != nil || n != 0 {
			t.Fatalf("second check of the same server: fenced %d (%v), want 0 (nothing changed that it can see)", n, err)
		}
		s = stock.NewStore(rdb, keys, stock.WithRegistry(s.Registry()))
		if n, err := s.CheckShards(ctx); err != nil || n != 1 {
			t.Fatalf("after a restart: fenced %d (%v), want 1", n, err)
		}
		s = stock.NewStore(rdb, keys, stock.WithRegistry(s.Registry()))
		if n, err := s.CheckShards(ctx); err != nil || n != 0 {
			t.Fatalf("second check: fenced %d (%v), want 0 (already fenced)", n, err)
		}
		if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 9, OrderID: 200, Quantity: 1}); !errors.Is(err, stock.ErrNotPublished) {
			t.Fatalf("buy of a fenced item: %v, want ErrNotPublished", err)
		}
		if _, err := s.Restock(ctx, stock.RestockRequest{ActivityID: 1, ItemID: 1, UserID: 1, OrderID: 101, Quantity: 1}); !errors.Is(err, stock.ErrNotPublished) {
			t.Fatalf("restock of a fenced item: %v, want ErrNotPublished", err)
		}
		live, err := s.Live(ctx, []stock.ItemRef{{ActivityID: 1, ItemID: 1}})
		if err != nil || live[0] != stock.LiveNo {
			t.Fatalf("fenced item live=%v (%v)", live, err)
		}
		created, err := s.Rebuild(ctx, stock.ItemState{Meta: meta, Held: map[int64]int64{1: 1, 2: 1, 3: 1}})
		if err != nil || !created {
			t.Fatalf("rebuild of a fenced item: created %v (%v)", created, err)
		}
		s = stock.NewStore(rdb, keys, stock.WithRegistry(s.Registry()))
		if n, err := s.CheckShards(ctx); err != nil || n != 0 {
			t.Fatalf("check after rebuild: fenced %d (%v), want 0 (rid written afresh)", n, err)
		}
		snap, err := s.Snapshot(ctx, 1, 1)
		if err != nil || snap.Available != 7 || snap.Held != 3 {
			t.Fatalf("after rebuild: %+v (%v), want available 7, held 3", snap, err)
		}
		if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 1, OrderID: 201, Quantity: 1}); !errors.Is(err, stock.ErrLimitExceeded) {
			t.Fatalf("holder after rebuild: %v, want ErrLimitExceeded", err)
		}
		if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 9, OrderID: 202, Quantity: 1}); err != nil {
			t.Fatalf("buy after rebuild: %v", err)
		}
		if created, err := s.Rebuild(ctx, stock.ItemState{Meta: meta}); err != nil || created {
			t.Fatalf("rebuild of a live item: created %v (%v)", created, err)
		}
		// An item another node wrote (a promoted replica's state) is fenced
		// by the buy itself.
		if _, ok := rdb.(*redis.ClusterClient); ok {
			rdb.HSet(ctx, keys.Item(1, 1), "nid", "0123456789012345678901234567890123456789")
			if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 10, OrderID: 203, Quantity: 1}); !errors.Is(err, stock.ErrNotPublished) {
				t.Fatalf("buy of an item written by another node: %v, want ErrNotPublished", err)
			}
			if v := rdb.HGet(ctx, keys.Item(1, 1), "fenced").Val(); v != "1" {
				t.Fatalf("item written by another node: fenced=%q after a buy, want 1", v)
			}
		}
	})
}

// TestRestartFromAOFFencesOnConnect: a single Redis with an append-only
// file is killed with SIGKILL and restarted from it. The first connection
// to the restarted server fences every registered item before any buy runs
// on it; a rebuild lifts the fence of its item only.
func TestRestartFromAOFFencesOnConnect(t *testing.T) {
	t.Parallel()
	srv := stocktest.StartServer(t, "--appendonly", "yes", "--appendfsync", "everysec")
	keys := stock.Keys{Prefix: "aof"}
	reg := stock.NewRegistry()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2, DialTimeout: time.Second,
		OnConnect: stock.ShardHook(reg, keys, discardLog())})
	t.Cleanup(func() { _ = rdb.Close() })
	s := stock.NewStore(rdb, keys, stock.WithRegistry(reg))
	ctx := t.Context()
	ma, mb := shardMeta(1, 1), shardMeta(1, 2)
	for _, m := range []stock.ItemMeta{ma, mb} {
		if _, err := s.Warm(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for u := int64(1); u <= 2; u++ {
		if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: u, OrderID: 300 + u, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// Let everysec write the file, so the restart brings the items back.
	if err := rdb.Do(ctx, "BGREWRITEAOF").Err(); err != nil {
		t.Fatal(err)
	}
	waitAOFRewritten(t, rdb)
	// A second process without the hook: its periodic check must see the
	// restart although it checked this address before.
	plain := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2, DialTimeout: time.Second})
	t.Cleanup(func() { _ = plain.Close() })
	periodic := stock.NewStore(plain, keys, stock.WithRegistry(reg))
	if n, err := periodic.CheckShards(ctx); err != nil || n != 0 {
		t.Fatalf("check before the restart: %d %v", n, err)
	}
	srv.Stop()
	srv.Start()

	if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 3, OrderID: 303, Quantity: 1}); !errors.Is(err, stock.ErrNotPublished) {
		t.Fatalf("first buy after the restart: %v, want ErrNotPublished (fenced on connect)", err)
	}
	for _, iid := range []int64{1, 2} {
		if v := rdb.HGet(ctx, keys.Item(1, iid), "fenced").Val(); v != "1" {
			t.Fatalf("item %d after the restart: fenced=%q, want 1", iid, v)
		}
	}
	if created, err := s.Rebuild(ctx, stock.ItemState{Meta: ma, Held: map[int64]int64{1: 1, 2: 1}}); err != nil || !created {
		t.Fatalf("rebuild: %v %v", created, err)
	}
	if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 3, OrderID: 304, Quantity: 1}); err != nil {
		t.Fatalf("buy after the rebuild: %v", err)
	}
	if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 2, UserID: 3, OrderID: 305, Quantity: 1}); !errors.Is(err, stock.ErrNotPublished) {
		t.Fatalf("buy of the item not rebuilt: %v, want ErrNotPublished", err)
	}
	if n, err := s.CheckShards(ctx); err != nil || n != 0 {
		t.Fatalf("check after the fence: fenced %d (%v), want 0", n, err)
	}

	// A second restart, seen first by the periodic check of the process
	// without the hook, which checked this address before: the new run_id
	// makes it check every item again, and it fences the rebuilt one.
	if n, err := periodic.CheckShards(ctx); err != nil || n != 0 {
		t.Fatalf("periodic check after the rebuild: %d %v", n, err)
	}
	if err := rdb.Do(ctx, "BGREWRITEAOF").Err(); err != nil {
		t.Fatal(err)
	}
	waitAOFRewritten(t, rdb)
	srv.Stop()
	srv.Start()
	cluster.Eventually(t, 10*time.Second, func() error {
		n, err := periodic.CheckShards(ctx)
		if err == nil && n != 1 {
			t.Fatalf("periodic check after the second restart fenced %d, want 1 (the rebuilt item)", n)
		}
		return err // the first call may meet a connection the restart broke
	})
}

func waitAOFRewritten(t *testing.T, rdb *redis.Client) {
	t.Helper()
	cluster.Eventually(t, 10*time.Second, func() error {
		info, err := rdb.Info(t.Context(), "persistence").Result()
		if err != nil {
			return err
		}
		if infoHas(info, "aof_rewrite_in_progress:0") && infoHas(info, "aof_rewrite_scheduled:0") &&
			infoHas(info, "aof_last_bgrewrite_status:ok") {
			return nil
		}
		return errors.New("AOF rewrite not finished")
	})
}

// infoValue reads one field of an INFO reply.
func infoValue(info, field string) string {
	for _, l := range splitLines(info) {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return v
		}
	}
	return ""
}

func infoHas(info, line string) bool {
	for _, l := range splitLines(info) {
		if l == line {
			return true
		}
	}
	return false
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			l := s[start:i]
			if len(l) > 0 && l[len(l)-1] == '\r' {
				l = l[:len(l)-1]
			}
			out = append(out, l)
			start = i + 1
		}
	}
	return out
}

// shardMeta is an item on sale now with plenty of stock and no limit.
func shardMeta(aid, iid int64) stock.ItemMeta {
	now := time.Now()
	return stock.ItemMeta{ActivityID: aid, ItemID: iid, Total: 100000, PriceCents: 100,
		StartAt: now.Add(-time.Hour), EndAt: now.Add(time.Hour), PayTimeout: time.Minute}
}

func refName(r stock.ItemRef) string { return fmt.Sprintf("%d/%d", r.ActivityID, r.ItemID) }
