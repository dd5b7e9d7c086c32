package order_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seckill/seckill/order"
)

// validActivity is an activity that passes Validate at activityNow; cases
// change one field of it.
func validActivity() order.Activity {
	return order.Activity{
		Name:         "Double 11",
		StartAt:      activityNow.Add(time.Hour),
		EndAt:        activityNow.Add(2 * time.Hour),
		PayTimeout:   15 * time.Minute,
		PerUserLimit: 1,
		Items:        []order.Item{{Name: "Phone", PriceCents: 99900, Stock: 100}},
	}
}

var activityNow = time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)

func TestActivityValidate(t *testing.T) {
	t.Parallel()
	manyItems := make([]order.Item, 101)
	for i := range manyItems {
		manyItems[i] = order.Item{Name: "x", PriceCents: 1, Stock: 1}
	}
	tests := []struct {
		name   string
		change func(a *order.Activity)
		field  string // "" means valid
	}{
		{"valid", func(a *order.Activity) {}, ""},
		{"valid at limits", func(a *order.Activity) {
			a.Name = strings.Repeat("é", 200)
			a.StartAt = activityNow.Add(-time.Hour) // already started is fine
			a.EndAt = a.StartAt.Add(31 * 24 * time.Hour)
			a.PayTimeout = 24 * time.Hour
			a.PerUserLimit = 1000
			a.Items = []order.Item{{Name: strings.Repeat("x", 200), PriceCents: 10_000_000_000, Stock: 10_000_000}}
		}, ""},
		{"empty name", func(a *order.Activity) { a.Name = "" }, "name"},
		{"blank name", func(a *order.Activity) { a.Name = "  \t" }, "name"},
		{"long name", func(a *order.Activity) { a.Name = strings.Repeat("x", 201) }, "name"},
		{"end equals start", func(a *order.Activity) { a.EndAt = a.StartAt }, "end_at"},
		{"end before start", func(a *order.Activity) { a.EndAt = a.StartAt.Add(-time.Second) }, "end_at"},
		{"zero times", func(a *order.Activity) { a.StartAt, a.EndAt = time.Time{}, time.Time{} }, "end_at"},
		{"ended", func(a *order.Activity) {
			a.StartAt, a.EndAt = activityNow.Add(-2*time.Hour), activityNow
		}, "end_at"},
		{"window over 31 days", func(a *order.Activity) {
			a.EndAt = a.StartAt.Add(31*24*time.Hour + time.Second)
		}, "end_at"},
		{"pay timeout zero", func(a *order.Activity) { a.PayTimeout = 0 }, "pay_timeout_seconds"},
		{"pay timeout under 1s", func(a *order.Activity) { a.PayTimeout = 999 * time.Millisecond }, "pay_timeout_seconds"},
		{"pay timeout over 24h", func(a *order.Activity) { a.PayTimeout = 24*time.Hour + time.Second }, "pay_timeout_seconds"},
		{"pay timeout fractional", func(a *order.Activity) { a.PayTimeout = 1500 * time.Millisecond }, "pay_timeout_seconds"},
		{"per user limit zero", func(a *order.Activity) { a.PerUserLimit = 0 }, "per_user_limit"},
		{"per user limit over 1000", func(a *order.Activity) { a.PerUserLimit = 1001 }, "per_user_limit"},
		{"no items", func(a *order.Activity) { a.Items = nil }, "items"},
		{"101 items", func(a *order.Activity) { a.Items = manyItems }, "items"},
		{"item name empty", func(a *order.Activity) { a.Items[0].Name = "" }, "items[0].name"},
		{"item name long", func(a *order.Activity) { a.Items[0].Name = strings.Repeat("x", 201) }, "items[0].name"},
		{"item price zero", func(a *order.Activity) { a.Items[0].PriceCents = 0 }, "items[0].price_cents"},
		{"item price negative", func(a *order.Activity) { a.Items[0].PriceCents = -1 }, "items[0].price_cents"},
		{"item price over 10^10", func(a *order.Activity) { a.Items[0].PriceCents = 10_000_000_001 }, "items[0].price_cents"},
		{"item stock zero", func(a *order.Activity) { a.Items[0].Stock = 0 }, "items[0].stock"},
		{"item stock over 10M", func(a *order.Activity) { a.Items[0].Stock = 10_000_001 }, "items[0].stock"},
		{"second item bad", func(a *order.Activity) {
			a.Items = append(a.Items, order.Item{Name: "Case", PriceCents: 100, Stock: 0})
		}, "items[1].stock"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := validActivity()
			tc.change(&a)
			err := a.Validate(activityNow)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, order.ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), "order: invalid: "+tc.field+" ") {
				t.Fatalf("Validate = %q, want it to name field %q", err, tc.field)
			}
		})
	}
}
