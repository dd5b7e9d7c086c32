package stock_test

import (
	"testing"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

func TestSoldOutFlags(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		m := meta()
		m.Total = 0
		f.warm(t, m)
		other := meta()
		other.ItemID, other.Total = testIID+1, 0
		f.warm(t, other)
		c := stock.NewSoldOut(f.store)

		if c.Known(testAID, testIID) {
			t.Fatal("unmarked item known sold out")
		}
		c.Mark(testAID, testIID)
		c.Mark(testAID, other.ItemID)
		c.Mark(testAID, testIID+2) // never published
		for _, iid := range []int64{testIID, other.ItemID, testIID + 2} {
			if !c.Known(testAID, iid) {
				t.Fatalf("item %d not known after Mark", iid)
			}
		}

		// Still 0: stays. Stock back: cleared. Hash gone: cleared.
		f.rdb.HIncrBy(f.ctx, f.keys.Item(testAID, other.ItemID), "stock", 1)
		if err := c.RunOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
		if !c.Known(testAID, testIID) {
			t.Error("item with 0 stock was cleared")
		}
		if c.Known(testAID, other.ItemID) {
			t.Error("item with stock back is still flagged")
		}
		if c.Known(testAID, testIID+2) {
			t.Error("item with no hash is still flagged")
		}

		c.Clear(testAID, testIID)
		if c.Known(testAID, testIID) {
			t.Error("Clear did not clear")
		}
		if err := c.RunOnce(f.ctx); err != nil {
			t.Errorf("RunOnce with nothing marked: %v", err)
		}
	})
}

func TestSoldOutRedisDownKeepsFlags(t *testing.T) {
	t.Parallel()
	c := stock.NewSoldOut(stock.NewStore(unreachable(t), stock.Keys{}))
	c.Mark(1, 2)
	if err := c.RunOnce(t.Context()); err == nil {
		t.Error("RunOnce against no Redis returned nil")
	}
	if !c.Known(1, 2) {
		t.Error("a failed check cleared the flag")
	}
}

func BenchmarkSoldOutKnown(b *testing.B) {
	c := stock.NewSoldOut(nil)
	for i := range int64(8) {
		c.Mark(1, i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !c.Known(1, 3) {
				b.Fatal("not known")
			}
		}
	})
}
