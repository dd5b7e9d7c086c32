package stock_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

func (f *fixture) acquireNode(t testing.TB, holder string, ttl time.Duration) *stock.NodeLease {
	t.Helper()
	l, err := stock.AcquireNode(f.ctx, f.rdb, f.keys, holder, ttl)
	if err != nil {
		t.Fatalf("AcquireNode(%s): %v", holder, err)
	}
	return l
}

func TestNodeLeasesMintUniqueIDs(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		a, b := f.acquireNode(t, "a", 10*time.Second), f.acquireNode(t, "b", 10*time.Second)
		if a.ID() == b.ID() || a.ID() < 0 || a.ID() >= stock.NodeCount || b.ID() < 0 || b.ID() >= stock.NodeCount {
			t.Fatalf("node ids %d and %d; want two distinct ids in [0, %d)", a.ID(), b.ID(), stock.NodeCount)
		}
		if got := f.rdb.Get(f.ctx, f.keys.Node(a.ID())).Val(); got != "a" {
			t.Errorf("node key holds %q, want a", got)
		}

		const perLease = 100_000
		ids := make([][]int64, 2)
		var wg sync.WaitGroup
		for i, l := range []*stock.NodeLease{a, b} {
			wg.Go(func() {
				ids[i] = make([]int64, perLease)
				for j := range ids[i] {
					id, err := l.NextID()
					if err != nil {
						t.Error(err)
						return
					}
					ids[i][j] = id
				}
			})
		}
		wg.Wait()
		seen := make(map[int64]struct{}, 2*perLease)
		for _, batch := range ids {
			for _, id := range batch {
				if _, dup := seen[id]; dup {
					t.Fatalf("duplicate id %d", id)
				}
				seen[id] = struct{}{}
			}
		}
		if len(seen) != 2*perLease {
			t.Errorf("%d distinct ids, want %d", len(seen), 2*perLease)
		}
	})
}

func TestNodeLeaseLost(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		tests := []struct {
			name string
			take func(f *fixture, key string)
		}{
			{"key taken by another holder", func(f *fixture, key string) { f.rdb.Set(f.ctx, key, "thief", time.Minute) }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				f := setupOn(t, top)
				l := f.acquireNode(t, "a", 10*time.Second)
				if err := l.RunOnce(f.ctx); err != nil || !l.Valid() {
					t.Fatalf("renew of a held lease: %v, valid %v", err, l.Valid())
				}
				tt.take(f, f.keys.Node(l.ID()))
				if err := l.RunOnce(f.ctx); !errors.Is(err, stock.ErrLeaseLost) {
					t.Errorf("RunOnce = %v, want ErrLeaseLost", err)
				}
				if _, err := l.NextID(); !errors.Is(err, stock.ErrLeaseLost) || l.Valid() {
					t.Errorf("NextID after loss = %v (valid %v), want ErrLeaseLost", err, l.Valid())
				}
				// Releasing a lost lease leaves the new holder's key alone.
				before := f.dump(t)
				if err := l.Release(f.ctx); err != nil {
					t.Fatal(err)
				}
				if after := f.dump(t); after != before {
					t.Errorf("Release of a lost lease changed Redis:\n%s\n%s", before, after)
				}
			})
		}
	})
}

// A node key that vanished (Redis restarted empty) is taken again by its
// holder: nobody else holds it, and a gateway must sell again once Redis is
// back. Another process that took it meanwhile keeps it (TestNodeLeaseLost).
func TestNodeLeaseRetakesAVanishedKey(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		l := f.acquireNode(t, "a", 10*time.Second)
		key := f.keys.Node(l.ID())
		f.rdb.Del(f.ctx, key)
		if err := l.RunOnce(f.ctx); err != nil || !l.Valid() {
			t.Fatalf("renew after the key vanished: %v, valid %v", err, l.Valid())
		}
		if got := f.rdb.Get(f.ctx, key).Val(); got != "a" {
			t.Fatalf("node key holds %q after the renewal, want the holder", got)
		}
		if ttl := f.rdb.PTTL(f.ctx, key).Val(); ttl <= 0 || ttl > 10*time.Second {
			t.Fatalf("node key TTL %v after the renewal, want (0, 10s]", ttl)
		}
		if _, err := l.NextID(); err != nil {
			t.Fatalf("NextID after the key was taken again: %v", err)
		}
	})
}

func TestNodeLeaseRunStopsOnLoss(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		l := f.acquireNode(t, "a", 300*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- l.Service(discardLog()).Run(f.ctx) }()
		time.Sleep(400 * time.Millisecond) // time is the subject: past the TTL, only renewals keep it
		if !l.Valid() || f.rdb.Get(f.ctx, f.keys.Node(l.ID())).Val() != "a" {
			t.Fatal("Run did not keep the lease")
		}
		f.rdb.Set(f.ctx, f.keys.Node(l.ID()), "thief", time.Minute)
		select {
		case err := <-done:
			if !errors.Is(err, stock.ErrLeaseLost) {
				t.Errorf("Run = %v, want ErrLeaseLost", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Run did not notice the lost lease")
		}
	})
}

func TestNodeLeaseExpiresLocallyWithoutRenewal(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		l := f.acquireNode(t, "a", 250*time.Millisecond)
		if _, err := l.NextID(); err != nil {
			t.Fatal(err)
		}
		// Valid until TTL less a fifth (200ms), well before Redis drops the key.
		time.Sleep(210 * time.Millisecond) // time is the subject: the local deadline passes
		if _, err := l.NextID(); !errors.Is(err, stock.ErrLeaseLost) {
			t.Errorf("NextID past the local deadline = %v, want ErrLeaseLost", err)
		}
	})
}

func TestNodeReleaseFreesID(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		l := f.acquireNode(t, "a", 10*time.Second)
		if err := l.Release(f.ctx); err != nil {
			t.Fatal(err)
		}
		if n := f.rdb.Exists(f.ctx, f.keys.Node(l.ID())).Val(); n != 0 {
			t.Error("node key still exists after Release")
		}
		if _, err := l.NextID(); !errors.Is(err, stock.ErrLeaseLost) {
			t.Errorf("NextID after Release = %v, want ErrLeaseLost", err)
		}
	})
}

func TestAcquireNodeAllTaken(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		pipe := f.rdb.Pipeline()
		for n := range int64(stock.NodeCount) {
			pipe.Set(f.ctx, f.keys.Node(n), "other", time.Minute)
		}
		if _, err := pipe.Exec(f.ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := stock.AcquireNode(f.ctx, f.rdb, f.keys, "a", time.Second); !errors.Is(err, stock.ErrNoFreeNode) {
			t.Errorf("AcquireNode = %v, want ErrNoFreeNode", err)
		}
		f.rdb.Del(f.ctx, f.keys.Node(517))
		if l := f.acquireNode(t, "a", time.Second); l.ID() != 517 {
			t.Errorf("got node %d, want the only free one, 517", l.ID())
		}
	})
}
