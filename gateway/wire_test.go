package gateway_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seckill/seckill/gateway/api"
)

// The field names of DESIGN.md §4 are the contract: every response the
// gateway really sends carries exactly these keys (items and error by their
// path), whatever gateway/api declares.
var (
	activityKeys = ".id .status .name .start_at .end_at .pay_timeout_seconds .per_user_limit " +
		".items .items.id .items.name .items.price_cents .items.stock"
	orderKeys = ".order_id .activity_id .item_id .user_id .quantity .amount_cents .status " +
		".cancel_reason .created_at .expire_at .paid_at .cancelled_at"
)

func TestResponsesKeepTheContractFieldNames(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 5, limit: 1})
	check := func(what string, r response, status int, want string) {
		t.Helper()
		if r.Status != status {
			t.Fatalf("%s: %d %s, want %d", what, r.Status, r.Body, status)
		}
		want = strings.Join(slices.Sorted(slices.Values(strings.Fields(want))), " ")
		if got := keyPaths(t, r.Body); got != want {
			t.Errorf("%s: keys\n %s\nwant\n %s\nin %s", what, got, want, r.Body)
		}
	}

	created := h.do("POST", "/admin/v1/activities", h.admin, api.CreateActivityRequest{
		Name: "x", StartAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour), PayTimeoutSeconds: 60, PerUserLimit: 1,
		Items: []api.NewItem{{Name: "a", PriceCents: 1, Stock: 1}},
	})
	check("create", created, http.StatusCreated, activityKeys)
	check("publish", h.do("POST", "/admin/v1/activities/"+decode[api.Activity](t, created).ID.String()+"/publish", h.admin, nil),
		http.StatusOK, activityKeys)
	check("activity info", h.do("GET", "/api/v1/activities/"+aid, "", nil), http.StatusOK,
		activityKeys+" .server_time .items.available")

	bought := h.buy(1, aid, iid, 1)
	check("buy", bought, http.StatusAccepted, ".order_id .status")
	id := decode[api.BuyAccepted](t, bought).OrderID.String()
	check("order", h.do("GET", "/api/v1/orders/"+id, h.userToken(1), nil), http.StatusOK, orderKeys)
	h.drain()
	check("payment", h.pay(id, "T1", 99900), http.StatusOK, orderKeys)
	other := decode[api.BuyAccepted](t, h.buy(2, aid, iid, 1)).OrderID.String()
	h.drain()
	check("cancel", h.do("POST", "/api/v1/orders/"+other+"/cancel", h.userToken(2), nil), http.StatusOK, orderKeys)
	check("stats", h.do("GET", "/admin/v1/activities/"+aid+"/stats", h.admin, nil), http.StatusOK,
		".activity_id .status .items .items.item_id .items.stock_total .items.available .items.reserved "+
			".items.pending .items.paid .items.cancelled .items.returning .items.consistent")
	check("error", h.do("GET", "/api/v1/orders/"+id, h.userToken(3), nil), http.StatusNotFound,
		".error .error.code .error.message")
}

// keyPaths lists every object key of a JSON document by path, sorted and
// space-separated, looking into the first element of arrays.
func keyPaths(t *testing.T, doc []byte) string {
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
	return strings.Join(slices.Sorted(maps.Keys(out)), " ")
}
