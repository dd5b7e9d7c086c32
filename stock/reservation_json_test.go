package stock

import (
	"math"
	"testing"
	"time"
)

// TestReservationJSON pins the reservation's JSON to the shape buy.lua
// writes, ids beyond 2^53 included, and checks that it reads back.
func TestReservationJSON(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		r    Reservation
		want string
	}{
		{Reservation{OrderID: math.MaxInt64, ActivityID: 7, ItemID: 12, UserID: 42, Quantity: 1, AmountCents: 99900,
			CreatedAt: time.UnixMilli(1763000000123), ExpireAt: time.UnixMilli(1763000900123)},
			`{"order_id":"9223372036854775807","activity_id":"7","item_id":"12","user_id":"42","quantity":1,"amount_cents":99900,"created_ms":1763000000123,"expire_ms":1763000900123}`},
		{Reservation{OrderID: 1<<53 + 1, ActivityID: 1, ItemID: 1, UserID: 1, Quantity: 1000, AmountCents: 0,
			CreatedAt: time.UnixMilli(0), ExpireAt: time.UnixMilli(1)},
			`{"order_id":"9007199254740993","activity_id":"1","item_id":"1","user_id":"1","quantity":1000,"amount_cents":0,"created_ms":0,"expire_ms":1}`},
	} {
		got, err := c.r.MarshalJSON()
		if err != nil || string(got) != c.want {
			t.Fatalf("MarshalJSON\n%s (%v)\nwant\n%s", got, err, c.want)
		}
		var back Reservation
		if err := back.UnmarshalJSON(got); err != nil || !back.CreatedAt.Equal(c.r.CreatedAt) || back.OrderID != c.r.OrderID || back.ExpireAt.UnixMilli() != c.r.ExpireAt.UnixMilli() {
			t.Fatalf("round trip: %+v (%v), want %+v", back, err, c.r)
		}
	}
}
