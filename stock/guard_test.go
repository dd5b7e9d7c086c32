package stock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestGuardFencesItemsNewToTheRegistry: a process whose shard checks ran
// before it knew an item (the hook of its first connections, its first
// CheckShards) must fence that item, if its state is stale, when it
// registers it, before any buy of it runs: through the client, on whichever
// master holds it.
func TestGuardFencesItemsNewToTheRegistry(t *testing.T) {
	t.Parallel()
	stocktest.ForEachTopology(t, func(t *testing.T, rdb redis.UniversalClient, keys stock.Keys) {
		ctx := t.Context()
		ref := stock.ItemRef{ActivityID: 1, ItemID: 1}
		fresh := stock.ItemRef{ActivityID: 1, ItemID: 2}
		writer := stock.NewStore(rdb, keys)
		for _, it := range []stock.ItemRef{ref, fresh} {
			if _, err := writer.Warm(ctx, shardMeta(it.ActivityID, it.ItemID)); err != nil {
				t.Fatal(err)
			}
		}
		// Another server's state: its rid is not this server's run_id.
		if err := rdb.HSet(ctx, keys.Item(1, 1), "rid", "run-id-of-the-crashed-server").Err(); err != nil {
			t.Fatal(err)
		}

		// A new process: its checks ran while its registry was empty.
		s := stock.NewStore(rdb, keys)
		if n, err := s.CheckShards(ctx); err != nil || n != 0 {
			t.Fatalf("check with an empty registry: fenced %d (%v)", n, err)
		}
		n, err := s.Guard(ctx, ref, fresh)
		if err != nil || n != 1 {
			t.Fatalf("guard of a stale and a fresh item: fenced %d (%v), want 1; item %v", n, err,
				rdb.HGetAll(ctx, keys.Item(1, 1)).Val())
		}
		if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 1, OrderID: newOrderID(), Quantity: 1}); !errors.Is(err, stock.ErrNotPublished) {
			t.Fatalf("buy of the stale item after Guard: %v, want ErrNotPublished", err)
		}
		if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 2, UserID: 1, OrderID: newOrderID(), Quantity: 1}); err != nil {
			t.Fatalf("buy of the item this server wrote: %v", err)
		}
		if n, err := s.Guard(ctx, ref, fresh); err != nil || n != 0 {
			t.Fatalf("second guard: fenced %d (%v), want 0", n, err)
		}
	})
}

// TestGuardFailureLeavesItemsUnregistered: items Guard could not fence are
// not registered, so the next Guard of them fences them.
func TestGuardFailureLeavesItemsUnregistered(t *testing.T) {
	t.Parallel()
	reg := stock.NewRegistry()
	s := stock.NewStore(unreachable(t), stock.Keys{Prefix: "guardfail"}, stock.WithRegistry(reg))
	ref := stock.ItemRef{ActivityID: 1, ItemID: 1}
	if _, err := s.Guard(t.Context(), ref); err == nil {
		t.Fatal("guard through an unreachable Redis: no error")
	}
	if got := reg.Items(); len(got) != 0 {
		t.Fatalf("after a failed guard the registry holds %v, want nothing", got)
	}
	if added := reg.Add(ref); len(added) != 1 {
		t.Fatalf("Add after a failed guard returned %v, want the item", added)
	}
}

// TestCheckShardsAtStartRetries: the start check waits for a server that
// is down until it answers, and gives up with an error when its context
// ends.
func TestCheckShardsAtStartRetries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	s := stock.NewStore(unreachable(t), stock.Keys{Prefix: "startfail"}, stock.WithLogger(discardLog()))
	if _, err := s.CheckShardsAtStart(short); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("start check of an unreachable Redis: %v, want an error with the deadline", err)
	}

	srv := stocktest.StartServer(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	keys := stock.Keys{Prefix: "start"}
	s = stock.NewStore(rdb, keys, stock.WithLogger(discardLog()))
	srv.Stop()
	s.Registry().Add(stock.ItemRef{ActivityID: 1, ItemID: 1})
	done := make(chan error, 1)
	go func() {
		_, err := s.CheckShardsAtStart(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("start check returned while the server was down: %v", err)
	default:
	}
	srv.Start()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("start check after the server came back: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("start check did not return within 30s of the server answering")
	}
}
