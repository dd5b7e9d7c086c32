package stock

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// TestReservationJSON checks the hand-written encoder against encoding/json
// and the decoder, including ids beyond 2^53 and negative-free edge values.
func TestReservationJSON(t *testing.T) {
	t.Parallel()
	for _, r := range []Reservation{
		{OrderID: math.MaxInt64, ActivityID: 7, ItemID: 12, UserID: 42, Quantity: 1, AmountCents: 99900,
			CreatedAt: time.UnixMilli(1763000000123), ExpireAt: time.UnixMilli(1763000900123)},
		{OrderID: 1<<53 + 1, ActivityID: 1, ItemID: 1, UserID: 1, Quantity: 1000, AmountCents: 0,
			CreatedAt: time.UnixMilli(0), ExpireAt: time.UnixMilli(1)},
	} {
		got, _ := r.MarshalJSON()
		want, _ := json.Marshal(reservationJSON{OrderID: r.OrderID, ActivityID: r.ActivityID, ItemID: r.ItemID,
			UserID: r.UserID, Quantity: r.Quantity, AmountCents: r.AmountCents,
			CreatedMS: r.CreatedAt.UnixMilli(), ExpireMS: r.ExpireAt.UnixMilli()})
		if twin := r.appendJSONReflect(nil); string(twin) != string(want) {
			t.Fatalf("ablated twin (SECKILL_ABLATE=appendjson)\n%s\nencoding/json\n%s", twin, want)
		}
		if string(got) != string(want) {
			t.Fatalf("hand-written JSON\n%s\nencoding/json\n%s", got, want)
		}
		var back Reservation
		if err := back.UnmarshalJSON(got); err != nil || !back.CreatedAt.Equal(r.CreatedAt) || back.OrderID != r.OrderID || back.ExpireAt.UnixMilli() != r.ExpireAt.UnixMilli() {
			t.Fatalf("round trip: %+v (%v), want %+v", back, err, r)
		}
	}
}

// TestItemKeyTwin: the concatenated key (SECKILL_ABLATE=keys) is the
// byte-built one.
func TestItemKeyTwin(t *testing.T) {
	k := Keys{Prefix: "sk"}
	for _, c := range [][2]int64{{7, 12}, {math.MaxInt64, 1}, {1, math.MaxInt64}} {
		if got, want := itemKeyConcat("sk", c[0], c[1], "resv"), k.itemKey(c[0], c[1], "resv"); got != want {
			t.Fatalf("concatenated %q, byte-built %q", got, want)
		}
	}
}

// BenchmarkReservationJSON compares AppendJSON with encoding/json:
// go test -run '^$' -bench ReservationJSON -benchmem ./stock
func BenchmarkReservationJSON(b *testing.B) {
	r := Reservation{OrderID: 1 << 60, ActivityID: 7, ItemID: 12, UserID: 4242, Quantity: 1, AmountCents: 99900,
		CreatedAt: time.UnixMilli(1763000000123), ExpireAt: time.UnixMilli(1763000900123)}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = r.AppendJSON(nil)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = r.appendJSONReflect(nil)
		}
	})
}

// BenchmarkItemKey compares the byte-built item key with concatenation, for
// the five keys one buy builds:
// go test -run '^$' -bench ItemKey -benchmem ./stock
func BenchmarkItemKey(b *testing.B) {
	k := Keys{Prefix: "sk"}
	suffixes := []string{"item", "buyers", "resv", "resvt", "idem:4242:click-1"}
	b.Run("bytes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, s := range suffixes {
				_ = k.itemKey(1234567, 42, s)
			}
		}
	})
	b.Run("concat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, s := range suffixes {
				_ = itemKeyConcat("sk", 1234567, 42, s)
			}
		}
	})
}
