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
		if string(got) != string(want) {
			t.Fatalf("hand-written JSON\n%s\nencoding/json\n%s", got, want)
		}
		var back Reservation
		if err := back.UnmarshalJSON(got); err != nil || !back.CreatedAt.Equal(r.CreatedAt) || back.OrderID != r.OrderID || back.ExpireAt.UnixMilli() != r.ExpireAt.UnixMilli() {
			t.Fatalf("round trip: %+v (%v), want %+v", back, err, r)
		}
	}
}
