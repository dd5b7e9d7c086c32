package api_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/seckill/seckill/gateway/api"
)

// The shapes as DESIGN.md §4 shows them; field names are the contract.
// Fields added since (status and returning of stats, server_time and
// available of the public view) are listed per case.
const (
	designCreate = `{"name":"Double 11","start_at":"2026-11-11T00:00:00Z","end_at":"2026-11-11T01:00:00Z",
		"pay_timeout_seconds":900,"per_user_limit":1,"items":[{"name":"Phone","price_cents":99900,"stock":100}]}`
	designActivity = `{"id":"7","status":"DRAFT","name":"Double 11","start_at":"…","end_at":"…",
		"pay_timeout_seconds":900,"per_user_limit":1,"items":[{"id":"12","name":"Phone","price_cents":99900,"stock":100}]}`
	designBuy      = `{"activity_id":"7","item_id":"12","quantity":1}`
	designAccepted = `{"order_id":"1859234923423424512","status":"PENDING"}`
	designOrder    = `{"order_id":"…","activity_id":"7","item_id":"12","user_id":"42","quantity":1,
		"amount_cents":99900,"status":"PENDING|PAID|CANCELLED","cancel_reason":"TIMEOUT|USER|null",
		"created_at":"…","expire_at":"…","paid_at":null,"cancelled_at":null}`
	designStats = `{"activity_id":"7","items":[{"item_id":"12","stock_total":100,"available":0,"reserved":0,
		"pending":60,"paid":40,"cancelled":3,"consistent":true}]}`
	designCallback = `{"order_id":"…","trade_no":"T123","amount_cents":99900,"paid_at":"2026-11-11T00:01:02Z"}`
	designError    = `{"error":{"code":"SOLD_OUT","message":"..."}}`
)

func TestShapesKeepTheDesignFieldNames(t *testing.T) {
	now := time.Now()
	amount := int64(99900)
	cases := []struct {
		name   string
		v      any
		design string
		added  []string // keys beyond the DESIGN example, as "path.key"
	}{
		{"create request", api.CreateActivityRequest{Items: []api.NewItem{{}}}, designCreate, nil},
		{"activity", api.Activity{ID: 7, Items: []api.Item{{ID: 12}}}, designActivity, nil},
		{"activity info", api.ActivityInfo{ID: 7, Items: []api.ItemInfo{{ID: 12}}}, designActivity,
			[]string{".server_time", ".items.available"}},
		{"buy request", api.BuyRequest{ActivityID: 7, ItemID: 12, Quantity: 1}, designBuy, nil},
		{"buy accepted", api.BuyAccepted{OrderID: 1, Status: api.OrderPending}, designAccepted, nil},
		{"order", api.Order{OrderID: 1, ActivityID: 7, ItemID: 12, UserID: 42}, designOrder, nil},
		{"stats", api.ActivityStats{ActivityID: 7, Items: []api.ItemStats{{ItemID: 12}}}, designStats,
			[]string{".status", ".items.returning"}},
		{"payment callback", api.PaymentCallback{OrderID: 1, AmountCents: &amount, PaidAt: &now}, designCallback, nil},
		{"error", api.ErrorResponse{Error: api.Error{Code: api.CodeSoldOut}}, designError, nil},
	}
	for _, c := range cases {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := keys(t, b)
		want := keys(t, []byte(c.design))
		for _, k := range c.added {
			want[k] = true
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: keys %v, want %v (%s)", c.name, sorted(got), sorted(want), b)
		}
	}
}

// keys returns every object key of a JSON document by path, looking into
// the first element of arrays: {"a":1,"b":[{"c":2}]} → .a .b .b.c
func keys(t *testing.T, doc []byte) map[string]bool {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	out := map[string]bool{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				out[path+"."+k] = true
				walk(path+"."+k, x)
			}
		case []any:
			if len(v) > 0 {
				walk(path, v[0])
			}
		}
	}
	walk("", v)
	return out
}

func sorted(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }

func TestIDTravelsAsADecimalString(t *testing.T) {
	b, err := json.Marshal(api.ID(1859234923423424512))
	if err != nil || string(b) != `"1859234923423424512"` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	for in, want := range map[string]api.ID{`"7"`: 7, `"1859234923423424512"`: 1859234923423424512} {
		var id api.ID
		if err := json.Unmarshal([]byte(in), &id); err != nil || id != want {
			t.Errorf("unmarshal %s: %d %v, want %d", in, id, err, want)
		}
	}
	for _, in := range []string{`7`, `"007"`, `"0"`, `0`, `"-1"`, `"x"`, `""`, `null`, `1.5`} {
		var id api.ID
		if err := json.Unmarshal([]byte(in), &id); err == nil {
			t.Errorf("unmarshal %s: got %d, want an error", in, id)
		}
	}
	if s := api.ID(42).String(); s != "42" {
		t.Errorf("String() = %q", s)
	}
}
