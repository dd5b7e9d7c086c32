package gateway_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/gateway/api"
)

// snapshot is every byte the test's Redis prefix and PostgreSQL schema hold,
// except the leases that renew themselves (semaphore, node id).
func (h *harness) snapshot() string {
	h.t.Helper()
	ctx := context.Background()
	var keys []string
	iter := h.rdb.Scan(ctx, 0, h.keys.Prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if strings.Contains(k, "{sem:") || strings.Contains(k, ":node:") {
			continue
		}
		keys = append(keys, k)
	}
	if err := iter.Err(); err != nil {
		h.t.Fatal(err)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v, err := h.rdb.Dump(ctx, k).Result()
		if err != nil {
			h.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s=%x\n", k, v)
	}
	for _, table := range []string{"activities", "items", "orders"} {
		var rows string
		err := h.pool.QueryRow(ctx, "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM "+table+" t").Scan(&rows)
		if err != nil {
			h.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:\n%s\n", table, rows)
	}
	return b.String()
}

func mintWith(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func algNoneToken(sub string) string {
	enc := base64.RawURLEncoding.EncodeToString
	header := enc([]byte(`{"alg":"none","typ":"JWT"}`))
	claims := enc([]byte(fmt.Sprintf(`{"sub":%q,"exp":%d,"role":"admin"}`, sub, time.Now().Add(time.Hour).Unix())))
	return header + "." + claims + "."
}

func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 10, limit: 2})
	otherAid, otherIid := h.publishActivity(activityOpts{stock: 10, limit: 2})
	user := h.userToken(77)
	exp := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(time.Now().Add(d)) }
	expired := mintWith(t, jwt.SigningMethodHS256, []byte(testSecret), gateway.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "77", ExpiresAt: exp(-time.Hour)}})
	noExp := mintWith(t, jwt.SigningMethodHS256, []byte(testSecret), gateway.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "77"}})
	forged := mintWith(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdefghij"), gateway.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "77", ExpiresAt: exp(time.Hour)}})
	hs512 := mintWith(t, jwt.SigningMethodHS512, []byte(testSecret), gateway.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "77", ExpiresAt: exp(time.Hour)}})
	notUser := mintWith(t, jwt.SigningMethodHS256, []byte(testSecret), gateway.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp(time.Hour)}})
	buyBody := func(a, i string, q any) string {
		return fmt.Sprintf(`{"activity_id":%q,"item_id":%q,"quantity":%v}`, a, i, q)
	}
	good := buyBody(aid, iid, 1)
	huge := `{"activity_id":"` + aid + `","item_id":"` + iid + `","quantity":1,"pad":"` + strings.Repeat("x", 5000) + `"}`
	validActivity := `{"name":"x","start_at":"2026-01-01T00:00:00Z","end_at":"2099-01-01T00:00:00Z","pay_timeout_seconds":60,"per_user_limit":1,"items":[{"name":"a","price_cents":1,"stock":1}]}`

	cases := []struct {
		name, method, path, token, body string
		header                          []string
		status                          int
		code                            string
	}{
		{"no token", "POST", "/api/v1/seckill", "", good, nil, 401, "UNAUTHORIZED"},
		{"expired token", "POST", "/api/v1/seckill", expired, good, nil, 401, "UNAUTHORIZED"},
		{"token without exp", "POST", "/api/v1/seckill", noExp, good, nil, 401, "UNAUTHORIZED"},
		{"forged token", "POST", "/api/v1/seckill", forged, good, nil, 401, "UNAUTHORIZED"},
		{"alg none token", "POST", "/api/v1/seckill", algNoneToken("77"), good, nil, 401, "UNAUTHORIZED"},
		{"HS512 token", "POST", "/api/v1/seckill", hs512, good, nil, 401, "UNAUTHORIZED"},
		{"garbage token", "POST", "/api/v1/seckill", "not.a.jwt", good, nil, 401, "UNAUTHORIZED"},
		{"sub not a user id", "POST", "/api/v1/seckill", notUser, good, nil, 401, "UNAUTHORIZED"},
		{"admin alg none on admin route", "POST", "/admin/v1/activities", algNoneToken("admin"), validActivity, nil, 401, "UNAUTHORIZED"},
		{"user token creates activity", "POST", "/admin/v1/activities", user, validActivity, nil, 403, "FORBIDDEN"},
		{"user token publishes", "POST", "/admin/v1/activities/" + aid + "/publish", user, "", nil, 403, "FORBIDDEN"},
		{"user token reads stats", "GET", "/admin/v1/activities/" + aid + "/stats", user, "", nil, 403, "FORBIDDEN"},
		{"malformed JSON", "POST", "/api/v1/seckill", user, `{"activity_id":`, nil, 400, "INVALID_REQUEST"},
		{"JSON array", "POST", "/api/v1/seckill", user, `[1,2]`, nil, 400, "INVALID_REQUEST"},
		{"trailing data", "POST", "/api/v1/seckill", user, good + `{}`, nil, 400, "INVALID_REQUEST"},
		{"missing item", "POST", "/api/v1/seckill", user, `{"activity_id":"` + aid + `","quantity":1}`, nil, 400, "INVALID_REQUEST"},
		{"negative id", "POST", "/api/v1/seckill", user, buyBody("-1", iid, 1), nil, 400, "INVALID_REQUEST"},
		{"quantity 0", "POST", "/api/v1/seckill", user, buyBody(aid, iid, 0), nil, 400, "INVALID_QUANTITY"},
		{"quantity negative", "POST", "/api/v1/seckill", user, buyBody(aid, iid, -1), nil, 400, "INVALID_QUANTITY"},
		{"quantity above limit", "POST", "/api/v1/seckill", user, buyBody(aid, iid, 3), nil, 400, "INVALID_QUANTITY"},
		{"quantity huge", "POST", "/api/v1/seckill", user, buyBody(aid, iid, "100000000000000000000000"), nil, 400, "INVALID_QUANTITY"},
		{"quantity fraction", "POST", "/api/v1/seckill", user, buyBody(aid, iid, 1.5), nil, 400, "INVALID_QUANTITY"},
		{"quantity not a number", "POST", "/api/v1/seckill", user, buyBody(aid, iid, `"one"`), nil, 400, "INVALID_REQUEST"},
		{"quantity true", "POST", "/api/v1/seckill", user, buyBody(aid, iid, `true`), nil, 400, "INVALID_REQUEST"},
		// One spelling per value (issue 9): ids are canonical decimals, the
		// quantity a JSON integer.
		{"activity id with leading zeros", "POST", "/api/v1/seckill", user, buyBody("00"+aid, iid, 1), nil, 400, "INVALID_REQUEST"},
		{"item id with leading zero", "POST", "/api/v1/seckill", user, buyBody(aid, "0"+iid, 1), nil, 400, "INVALID_REQUEST"},
		{"id with plus", "POST", "/api/v1/seckill", user, buyBody("+"+aid, iid, 1), nil, 400, "INVALID_REQUEST"},
		{"id with space", "POST", "/api/v1/seckill", user, buyBody(aid, " "+iid, 1), nil, 400, "INVALID_REQUEST"},
		{"bare id 1.0", "POST", "/api/v1/seckill", user, `{"activity_id":` + aid + `.0,"item_id":"` + iid + `","quantity":1}`, nil, 400, "INVALID_REQUEST"},
		{"quoted quantity", "POST", "/api/v1/seckill", user, buyBody(aid, iid, `"1"`), nil, 400, "INVALID_REQUEST"},
		{"quantity 1.0", "POST", "/api/v1/seckill", user, buyBody(aid, iid, "1.0"), nil, 400, "INVALID_QUANTITY"},
		{"quantity 1e0", "POST", "/api/v1/seckill", user, buyBody(aid, iid, "1e0"), nil, 400, "INVALID_QUANTITY"},
		{"path id with leading zero", "GET", "/admin/v1/activities/0" + aid + "/stats", h.admin, "", nil, 404, "NOT_FOUND"},
		{"quantity missing", "POST", "/api/v1/seckill", user, `{"activity_id":"` + aid + `","item_id":"` + iid + `"}`, nil, 400, "INVALID_QUANTITY"},
		{"unknown activity", "POST", "/api/v1/seckill", user, buyBody("999999", iid, 1), nil, 404, "NOT_FOUND"},
		{"unknown item", "POST", "/api/v1/seckill", user, buyBody(aid, "999999", 1), nil, 404, "NOT_FOUND"},
		{"item of another activity", "POST", "/api/v1/seckill", user, buyBody(aid, otherIid, 1), nil, 404, "NOT_FOUND"},
		{"activity with another's item", "POST", "/api/v1/seckill", user, buyBody(otherAid, iid, 1), nil, 404, "NOT_FOUND"},
		{"body over 4 KiB", "POST", "/api/v1/seckill", user, huge, nil, 413, "PAYLOAD_TOO_LARGE"},
		{"bad idempotency key", "POST", "/api/v1/seckill", user, good, []string{"Idempotency-Key", "has spaces!"}, 400, "INVALID_REQUEST"},
		{"long idempotency key", "POST", "/api/v1/seckill", user, good, []string{"Idempotency-Key", strings.Repeat("k", 65)}, 400, "INVALID_REQUEST"},
		{"invalid window", "POST", "/admin/v1/activities", h.admin, strings.Replace(validActivity, "2099", "2025", 1), nil, 400, "INVALID_REQUEST"},
		{"zero stock", "POST", "/admin/v1/activities", h.admin, strings.Replace(validActivity, `"stock":1`, `"stock":0`, 1), nil, 400, "INVALID_REQUEST"},
		{"negative price", "POST", "/admin/v1/activities", h.admin, strings.Replace(validActivity, `"price_cents":1`, `"price_cents":-5`, 1), nil, 400, "INVALID_REQUEST"},
		{"limit 0", "POST", "/admin/v1/activities", h.admin, strings.Replace(validActivity, `"per_user_limit":1`, `"per_user_limit":0`, 1), nil, 400, "INVALID_REQUEST"},
		{"activity name with NUL", "POST", "/admin/v1/activities", h.admin, strings.Replace(validActivity, `"name":"x"`, `"name":"x\u0000y"`, 1), nil, 400, "INVALID_REQUEST"},
		{"activity with trailing data", "POST", "/admin/v1/activities", h.admin, validActivity + `{"name":"again"}`, nil, 400, "INVALID_REQUEST"},
		{"activity bad time", "POST", "/admin/v1/activities", h.admin, strings.Replace(validActivity, "2099-01-01T00:00:00Z", "tomorrow", 1), nil, 400, "INVALID_REQUEST"},
		{"publish unknown", "POST", "/admin/v1/activities/424242/publish", h.admin, "", nil, 404, "NOT_FOUND"},
		{"publish bad id", "POST", "/admin/v1/activities/abc/publish", h.admin, "", nil, 404, "NOT_FOUND"},
		{"stats unknown", "GET", "/admin/v1/activities/424242/stats", h.admin, "", nil, 404, "NOT_FOUND"},
		{"unknown order", "GET", "/api/v1/orders/12345", user, "", nil, 404, "NOT_FOUND"},
		{"unknown route", "GET", "/api/v1/nope", user, "", nil, 404, "NOT_FOUND"},
	}
	before := h.snapshot()
	for _, c := range cases {
		var body any
		if c.body != "" {
			body = c.body
		}
		r := h.do(c.method, c.path, c.token, body, c.header...)
		if r.Status != c.status || r.code() != c.code {
			t.Errorf("%s: got %d %s, want %d %s", c.name, r.Status, r.Body, c.status, c.code)
		}
		if decode[api.ErrorResponse](t, r).Error.Message == "" {
			t.Errorf("%s: no error message in %s", c.name, r.Body)
		}
	}
	if after := h.snapshot(); after != before {
		t.Fatalf("bad input changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// And the good request still works afterwards.
	if r := h.do("POST", "/api/v1/seckill", user, good); r.Status != 202 {
		t.Fatalf("good buy after bad input: %d %s", r.Status, r.Body)
	}
}
