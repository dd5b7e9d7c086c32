package gateway_test

// Fuzz targets. `go test` runs their seeds (f.Add and testdata/fuzz) as
// ordinary tests; `go test -run '^$' -fuzz FuzzX -fuzztime 3m ./gateway/`
// searches for more. Each builds the real router with only the
// dependencies the path under test may touch.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/ordertest"
	"github.com/seckill/seckill/stock"
)

// fuzzMaxBody is the body limit of the fuzzed gateways (the default).
const fuzzMaxBody = 4096

// codesByStatus is the HTTP contract's error codes for each status.
var codesByStatus = map[int][]string{
	400: {"INVALID_REQUEST", "INVALID_QUANTITY", "AMOUNT_MISMATCH"},
	401: {"UNAUTHORIZED", "INVALID_SIGNATURE"},
	403: {"FORBIDDEN", "NOT_STARTED", "ENDED"},
	404: {"NOT_FOUND"},
	409: {"SOLD_OUT", "LIMIT_EXCEEDED", "ALREADY_PUBLISHED", "ORDER_CLOSED", "NOT_PENDING"},
	413: {"PAYLOAD_TOO_LARGE"},
	429: {"RATE_LIMITED", "BUSY"},
	503: {"UNAVAILABLE"},
}

// checkErrorBody fails unless r is a contract error response with one of
// the codes allowed for its status and returns the code.
func checkErrorBody(t *testing.T, r *httptest.ResponseRecorder) string {
	t.Helper()
	var e api.ErrorResponse
	if err := json.Unmarshal(r.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("%d with a body that is not a contract error: %q", r.Code, r.Body.Bytes())
	}
	ok := false
	for _, c := range codesByStatus[r.Code] {
		ok = ok || c == e.Error.Code
	}
	if !ok {
		t.Fatalf("%d with code %q, not one of %v", r.Code, e.Error.Code, codesByStatus[r.Code])
	}
	if !strings.HasPrefix(r.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("error with Content-Type %q", r.Header().Get("Content-Type"))
	}
	if (r.Code == 429 || r.Code == 503) && r.Header().Get("Retry-After") == "" {
		t.Fatalf("%d without Retry-After", r.Code)
	}
	return e.Error.Code
}

// buyFuzz is the buy path up to the broker check: the catalog (PostgreSQL,
// loaded once) knows one item; the broker is down, so a request that passes
// every check is answered 503 before the semaphore, the breaker or Redis.
// Those dependencies are nil: reaching them would panic and fail the run.
type buyFuzz struct {
	handler  http.Handler
	token    string
	aid, iid int64
	limit    int64
}

func newBuyFuzz(f *testing.F) *buyFuzz {
	ctx := context.Background()
	store := order.NewStore(ordertest.NewPool(f))
	now := time.Now()
	a, err := store.CreateActivity(ctx, order.Activity{Name: "fuzz", StartAt: now.Add(-time.Hour),
		EndAt: now.Add(48 * time.Hour), PayTimeout: time.Minute, PerUserLimit: 3,
		Items: []order.Item{{Name: "x", PriceCents: 100, Stock: 10}}}, now)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := store.MarkPublished(ctx, a.ID); err != nil {
		f.Fatal(err)
	}
	// Loaded once; misses never query again within the hour.
	catalog := order.NewCatalog(store, time.Hour)
	if err := catalog.Refresh(ctx); err != nil {
		f.Fatal(err)
	}
	auth := gateway.NewAuth(testSecret)
	broker := &order.Broker{} // never connected: no buy gets past the broker check
	srv, err := gateway.New(gateway.Deps{
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Auth: auth, Catalog: catalog,
		SoldOut: stock.NewSoldOut(nil), Broker: broker, Publisher: order.NewPublisher(broker, time.Second),
		Registry: prometheus.NewRegistry(), Flow: permissiveFlow, MaxBodyBytes: fuzzMaxBody,
	})
	if err != nil {
		f.Fatal(err)
	}
	tok, err := auth.Mint("7", "", 24*time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	return &buyFuzz{handler: srv.Handler(), token: tok, aid: a.ID, iid: a.Items[0].ID, limit: 3}
}

// Modes of FuzzBuyRequest (bits).
const (
	buyStructured = 1 << iota // body built from aid, iid, qty instead of raw
	buyNumericIDs             // ids as JSON numbers rather than strings
	buyKnownAID               // use the published activity id
	buyKnownIID               // use the published item id
	buyChunked                // no Content-Length: the limit applies while reading
)

func FuzzBuyRequest(f *testing.F) {
	fz := newBuyFuzz(f)
	aid, iid := strconv.FormatInt(fz.aid, 10), strconv.FormatInt(fz.iid, 10)
	for _, s := range []struct {
		body string
		key  string
		mode uint8
	}{
		{`{"activity_id":"` + aid + `","item_id":"` + iid + `","quantity":1}`, "", 0},
		{`{"activity_id":` + aid + `,"item_id":` + iid + `,"quantity":3}`, "click-1", 0},
		{`{"activity_id":"` + aid + `","item_id":"` + iid + `","quantity":"2"}`, "", buyChunked},
		{`{"activity_id":"` + aid + `","item_id":"` + iid + `","quantity":1e0}`, "", 0},
		{`{"activity_id":"` + aid + `","item_id":"` + iid + `","quantity":4}`, "", 0},
		{`{"activity_id":"+` + aid + `","item_id":"0` + iid + `","quantity":1}`, "", 0},
		{`{"activity_id":"9223372036854775807","item_id":"1","quantity":1}`, "", 0},
		{`{"activity_id":"9223372036854775808","item_id":"1","quantity":1}`, "", 0},
		{`{"activity_id":null,"item_id":null,"quantity":null}`, "", 0},
		{`{"ACTIVITY_ID":"` + aid + `","Item_Id":"` + iid + `","quantity":1,"quantity":2}`, "", 0},
		{`{"activity_id":"` + aid + `","item_id":"` + iid + `","quantity":1}{}`, "", 0},
		{`[]`, "", 0}, {`null`, "", 0}, {``, "", 0}, {`"\u0000"`, "", 0},
		{`{"activity_id":"` + aid + `","item_id":"` + iid + `","quantity":1}`, "has space", 0},
		{`{"activity_id":"` + aid + `","item_id":"` + iid + `","quantity":1}`, strings.Repeat("k", 65), 0},
		{`{"activity_id":"` + aid + `","item_id":"` + iid + `","quantity":1}`, "k\x00\r\n", 0},
		{`{"activity_id":"` + aid + `","item_id":"` + iid + `","quantity":1,"pad":"` + strings.Repeat("x", 5000) + `"}`, "", 0},
		{`{"activity_id":"` + aid + `","item_id":"` + iid + `","quantity":1,"pad":"` + strings.Repeat("x", 5000) + `"}`, "", buyChunked},
		{"", "", buyStructured | buyKnownAID | buyKnownIID},
		{"", "ok.key:1_-", buyStructured | buyNumericIDs | buyKnownAID | buyKnownIID},
		{"", "", buyStructured | buyKnownAID},
	} {
		f.Add([]byte(s.body), s.key, int64(1), int64(1), int64(1), s.mode)
	}
	f.Add([]byte(nil), "", int64(-5), int64(0), int64(2), uint8(buyStructured|buyKnownIID))
	f.Add([]byte(nil), "", int64(1), int64(1), int64(0), uint8(buyStructured|buyKnownAID|buyKnownIID))
	f.Add([]byte(nil), "", int64(1), int64(1), int64(-1<<63), uint8(buyStructured|buyKnownAID|buyKnownIID))

	f.Fuzz(func(t *testing.T, body []byte, key string, a, i, qty int64, mode uint8) {
		if mode&buyKnownAID != 0 {
			a = fz.aid
		}
		if mode&buyKnownIID != 0 {
			i = fz.iid
		}
		if mode&buyStructured != 0 {
			id := func(v int64) string {
				if mode&buyNumericIDs != 0 {
					return strconv.FormatInt(v, 10)
				}
				return strconv.Quote(strconv.FormatInt(v, 10))
			}
			body = []byte(fmt.Sprintf(`{"activity_id":%s,"item_id":%s,"quantity":%d}`, id(a), id(i), qty))
		}
		req := httptest.NewRequest("POST", "/api/v1/seckill", bytes.NewReader(body))
		if mode&buyChunked != 0 {
			req.ContentLength = -1
		}
		req.Header.Set("Authorization", "Bearer "+fz.token)
		if key != "" {
			req.Header["Idempotency-Key"] = []string{key}
		}
		rec := httptest.NewRecorder()
		fz.handler.ServeHTTP(rec, req)
		if rec.Code == 500 || rec.Code < 400 {
			// 2xx is impossible with the broker down; 500 is a panic or an
			// error the contract does not know.
			t.Fatalf("%d %q for body %q, key %q", rec.Code, rec.Body.Bytes(), body, key)
		}
		code := checkErrorBody(t, rec)
		if len(body) > fuzzMaxBody && rec.Code != 413 {
			t.Fatalf("%d-byte body answered %d, want 413", len(body), rec.Code)
		}
		if mode&buyStructured == 0 {
			return
		}
		// Built from known parts: the one right answer, in the handler's
		// order of checks.
		want := struct {
			status int
			code   string
		}{503, "UNAVAILABLE"}
		validKey := len(key) <= 64
		for _, r := range key {
			validKey = validKey && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
				r == '_' || r == '.' || r == ':' || r == '-')
		}
		switch {
		case a < 1 || i < 1, mode&buyNumericIDs != 0, !validKey: // an id is a string
			want.status, want.code = 400, "INVALID_REQUEST"
		case a != fz.aid || i != fz.iid:
			want.status, want.code = 404, "NOT_FOUND"
		case qty < 1 || qty > fz.limit:
			want.status, want.code = 400, "INVALID_QUANTITY"
		}
		if rec.Code != want.status || code != want.code {
			t.Fatalf("body %s key %q: %d %s, want %d %s", body, key, rec.Code, code, want.status, want.code)
		}
	})
}

// payFuzz is the payment callback over a real PostgreSQL schema and NATS
// (for orders not persisted yet) holding three orders: one PENDING, one
// CANCELLED and one PAID.
type payFuzz struct {
	handler http.Handler
	signer  *gateway.Signer
	pool    *pgxpool.Pool
	pending order.Order
}

const (
	fuzzPendingID   = 1001
	fuzzCancelledID = 1002
	fuzzPaidID      = 1003
	fuzzPaidTrade   = "T-PAID"
	fuzzPaySecret   = "fuzz-payment-secret-0123456789abcdef"
)

func newPayFuzz(f *testing.F) *payFuzz {
	ctx := context.Background()
	pool := ordertest.NewPool(f)
	store := order.NewStore(pool)
	broker := ordertest.NewBroker(f)
	now := time.Now().UTC().Truncate(time.Microsecond)
	paidAt, cancelledAt := now, now
	base := order.Order{ActivityID: 1, ItemID: 1, UserID: 9, Quantity: 1, AmountCents: 99900,
		Status: order.StatusPending, CreatedAt: now, ExpireAt: now.Add(time.Hour)}
	pending, cancelled, paid := base, base, base
	pending.ID = fuzzPendingID
	cancelled.ID, cancelled.Status, cancelled.CancelReason, cancelled.CancelledAt = fuzzCancelledID,
		order.StatusCancelled, order.CancelUser, &cancelledAt
	paid.ID, paid.Status, paid.PaidAt, paid.TradeNo = fuzzPaidID, order.StatusPaid, &paidAt, fuzzPaidTrade
	if _, err := store.InsertOrders(ctx, []order.Order{pending, cancelled, paid}); err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer := gateway.NewSigner(fuzzPaySecret)
	srv, err := gateway.New(gateway.Deps{
		Log: log, Auth: gateway.NewAuth(testSecret), Signer: signer, Broker: broker,
		Publisher: order.NewPublisher(broker, time.Second),
		Orders:    order.NewOrders(store, order.NewLookup(store, broker), order.NewCanceller(log, store, nil)),
		Registry:  prometheus.NewRegistry(), Flow: permissiveFlow, MaxBodyBytes: fuzzMaxBody,
	})
	if err != nil {
		f.Fatal(err)
	}
	return &payFuzz{handler: srv.Handler(), signer: signer, pool: pool, pending: pending}
}

// state is every row of the orders table.
func (p *payFuzz) state(t *testing.T) string {
	var s string
	err := p.pool.QueryRow(context.Background(),
		`SELECT string_agg(o::text, E'\n' ORDER BY id) FROM orders o`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Signature modes of FuzzPaymentCallback.
const (
	sigAsGiven = iota // the fuzzed signature
	sigValid          // the body's signature
	sigMutated        // the body's signature with one byte replaced
	sigModes
)

func FuzzPaymentCallback(f *testing.F) {
	p := newPayFuzz(f)
	initial := ""
	for _, s := range []struct {
		body string
		sig  string
		mode uint8
	}{
		{`{"order_id":"1001","trade_no":"T1","amount_cents":99900,"paid_at":"2026-11-11T00:01:02Z"}`, "", sigValid},
		{`{"order_id":1001,"trade_no":"T1","amount_cents":99900}`, "", sigMutated},
		{`{"order_id":"1001","trade_no":"T1","amount_cents":99901}`, "", sigValid},
		{`{"order_id":"1002","trade_no":"T2","amount_cents":99900}`, "", sigValid},
		{`{"order_id":"1003","trade_no":"T-PAID","amount_cents":99900}`, "", sigValid},
		{`{"order_id":"1003","trade_no":"T-OTHER","amount_cents":99900}`, "", sigValid},
		{`{"order_id":"1001","trade_no":"T-PAID","amount_cents":99900}`, "", sigValid},
		{`{"order_id":"99999","trade_no":"T1","amount_cents":1}`, "", sigValid},
		{`{"order_id":"1001","trade_no":"` + strings.Repeat("t", 65) + `","amount_cents":99900}`, "", sigValid},
		{`{"order_id":"1001","trade_no":"T\u0000","amount_cents":99900}`, "", sigValid},
		{`{"order_id":"1001","trade_no":"T\u2028\ud800","amount_cents":99900}`, "", sigValid},
		{`{"order_id":"1001","trade_no":"T1","amount_cents":99900,"paid_at":"0000-01-01T00:00:00Z"}`, "", sigValid},
		{`{"order_id":"1001","trade_no":"T1","amount_cents":99900,"paid_at":"9999-12-31T23:59:59+23:59"}`, "", sigValid},
		{`{"order_id":"1001","trade_no":"T1","amount_cents":99900}`, "00", sigAsGiven},
		{`{"order_id":"1001","trade_no":"T1","amount_cents":99900}`, "", sigAsGiven},
		{`{"order_id":"1001"`, "", sigValid},
		{``, "", sigValid},
		{strings.Repeat(" ", 5000), "", sigValid},
	} {
		f.Add([]byte(s.body), s.sig, s.mode, uint16(7), byte('0'))
	}

	f.Fuzz(func(t *testing.T, body []byte, sig string, mode uint8, pos uint16, b byte) {
		if initial == "" {
			initial = p.state(t)
		}
		good := p.signer.Sign(body)
		switch mode % sigModes {
		case sigValid:
			sig = good
		case sigMutated:
			i := int(pos) % len(good)
			sig = good[:i] + string([]byte{b}) + good[i+1:]
		}
		req := httptest.NewRequest("POST", "/api/v1/payments/callback", bytes.NewReader(body))
		req.Header["X-Signature"] = []string{sig}
		rec := httptest.NewRecorder()
		p.handler.ServeHTTP(rec, req)

		// Hex is case-insensitive; nothing else spells the right MAC.
		signed := strings.EqualFold(sig, good)
		switch {
		case len(body) > fuzzMaxBody:
			if rec.Code != 413 {
				t.Fatalf("%d-byte body: %d, want 413", len(body), rec.Code)
			}
		case !signed:
			if rec.Code != 401 {
				t.Fatalf("signature %q (want %s): %d %q, want 401", sig, good, rec.Code, rec.Body.Bytes())
			}
		case rec.Code == 200:
		case rec.Code != 400 && rec.Code != 404 && rec.Code != 409:
			t.Fatalf("signed body %q: %d %q, want 200, 400, 404 or 409", body, rec.Code, rec.Body.Bytes())
		}
		if rec.Code != 200 {
			checkErrorBody(t, rec)
		}
		for _, s := range []string{fuzzPaySecret, good} {
			if strings.Contains(rec.Body.String(), s) {
				t.Fatalf("answer %q contains %q", rec.Body.Bytes(), s)
			}
		}
		after := p.state(t)
		if rec.Code != 200 {
			if after != initial {
				t.Fatalf("a %d changed the orders:\n%s\n---\n%s", rec.Code, initial, after)
			}
			return
		}
		// A valid payment: of the PENDING order (which is reset for the next
		// input) or a repeat of the PAID order's own trade (no change).
		var out api.Order
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Status != api.OrderPaid {
			t.Fatalf("200 with %q", rec.Body.Bytes())
		}
		switch out.OrderID.String() {
		case strconv.Itoa(fuzzPaidID):
			if after != initial {
				t.Fatalf("a repeated callback changed the orders")
			}
		case strconv.Itoa(fuzzPendingID):
			var status, trade string
			err := p.pool.QueryRow(context.Background(),
				`SELECT status, trade_no FROM orders WHERE id = $1`, fuzzPendingID).Scan(&status, &trade)
			if err != nil || status != "PAID" || trade == "" || trade == fuzzPaidTrade {
				t.Fatalf("paid row: %s %q %v", status, trade, err)
			}
			if _, err := p.pool.Exec(context.Background(),
				`UPDATE orders SET status = 'PENDING', trade_no = NULL, paid_at = NULL WHERE id = $1`, fuzzPendingID); err != nil {
				t.Fatal(err)
			}
			if s := p.state(t); s != initial {
				t.Fatalf("reset did not restore the orders:\n%s\n---\n%s", initial, s)
			}
		default:
			t.Fatalf("200 for order %s (body %q)", out.OrderID, body)
		}
	})
}

// jwtFuzzSecret signs FuzzJWT's tokens; validToken is its HS256 token for
// user 42, expiring in 2100 (fixed, so seeds stay valid).
var jwtFuzzValid = func() string {
	c := gateway.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "42",
		ExpiresAt: jwt.NewNumericDate(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(testSecret))
	if err != nil {
		panic(err)
	}
	return s
}()

func jwtSign(signingInput string) string {
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write([]byte(signingInput))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// jwtVerdict says whether a token that is correctly signed over its own
// first two segments must be accepted: its header is JSON naming alg HS256
// and its claims decode (as the parser decodes them) with an exp that has
// not passed and an nbf that has come, both with the 5 s leeway. decided is
// false within 2 s of either boundary, where the clocks of the verifier and
// this oracle may disagree.
func jwtVerdict(header, payload []byte) (accept, decided bool) {
	var h map[string]any
	if json.Unmarshal(header, &h) != nil {
		return false, true
	}
	if alg, ok := h["alg"].(string); !ok || alg != "HS256" {
		return false, true
	}
	var c gateway.Claims
	if json.Unmarshal(payload, &c) != nil || c.ExpiresAt == nil {
		return false, true
	}
	const leeway, margin = 5 * time.Second, 2 * time.Second
	now := time.Now()
	near := func(t time.Time) bool { d := t.Sub(now); return d > -margin && d < margin }
	exp := c.ExpiresAt.Add(leeway)
	if near(exp) {
		return false, false
	}
	accept = now.Before(exp)
	if c.NotBefore != nil {
		nbf := c.NotBefore.Add(-leeway)
		if near(nbf) {
			return false, false
		}
		accept = accept && !now.Before(nbf)
	}
	return accept, true
}

// Mutations of FuzzJWT.
const (
	mutReplace = iota
	mutInsert
	mutDelete
	mutSwap
	mutations
)

func mutate(s string, op uint8, pos uint16, b byte) string {
	i := int(pos) % (len(s) + 1)
	switch op % mutations {
	case mutReplace:
		if i == len(s) {
			return s
		}
		return s[:i] + string([]byte{b}) + s[i+1:]
	case mutInsert:
		return s[:i] + string([]byte{b}) + s[i:]
	case mutDelete:
		if i == len(s) {
			return s
		}
		return s[:i] + s[i+1:]
	default:
		j := int(b) % len(s)
		if i == len(s) {
			return s
		}
		bs := []byte(s)
		bs[i], bs[j] = bs[j], bs[i]
		return string(bs)
	}
}

// FuzzJWT checks Auth.Verify four ways on every input:
//   - the fuzzed string itself is accepted only if it is byte for byte the
//     HS256 signature of its own first two segments (the one canonical
//     spelling) and those segments pass jwtVerdict;
//   - the fuzzed header and claims JSON, encoded and signed correctly, are
//     accepted exactly when jwtVerdict says so;
//   - one mutation of a valid token is accepted only if it changed nothing;
//   - whatever the fast path accepts (the fuzzed token, the re-signed one,
//     the mutation), golang-jwt accepts with the same claims.
func FuzzJWT(f *testing.F) {
	auth := gateway.NewAuth(testSecret)
	parts := strings.Split(jwtFuzzValid, ".")
	dec := func(s string) string { b, _ := base64.RawURLEncoding.DecodeString(s); return string(b) }
	hdr, claims := dec(parts[0]), dec(parts[1])
	for _, s := range []struct{ token, header, claims string }{
		{jwtFuzzValid, hdr, claims},
		{parts[0] + "." + parts[1] + ".", `{"alg":"none"}`, claims},
		{algNoneToken("1"), `{"alg":"HS512"}`, claims},
		{jwtFuzzValid + "\n", `{"alg":"HS256","alg":"none"}`, `{"sub":"1","exp":4102444800,"nbf":4102444000}`},
		{"a.b.c", `{"alg":"HS256"}`, `{"exp":"4102444800"}`},
		{"..", `{"alg":"HS256"}`, `{"exp":1e400}`},
		{"", `{"alg":"HS256"}`, `{"exp":-1e300}`},
		{strings.Repeat(".", 3), `{"alg":"HS256"}`, `{"exp":4102444800,"aud":5}`},
		{jwtFuzzValid, `{"alg":"HS256"}`, `{"exp":4102444800}garbage`},
		{jwtFuzzValid, `{"alg":"HS256"} `, `{"exp":4102444800.5,"exp":null}`},
		{jwtFuzzValid, `{"alg":"HS256"}`, `{"exp":9223372036854775807}`},
		{jwtFuzzValid, `{"alg":"HS256"}`, `null`},
		{jwtFuzzValid, hdr, `{"sub":"1","exp":4102444800,"sub":"2"}`},
		{jwtFuzzValid, hdr, `{"sub":"1","exp":041024448}`},
		{jwtFuzzValid, hdr, `{"sub":"1","exp":4102444800,"nbf":4102444000}`},
		{jwtFuzzValid, hdr, `{"sub":"1","exp":1234567890123456}`},
		{jwtFuzzValid, hdr, `{"sub":"1","EXP":4102444800}`},
		{jwtFuzzValid, hdr, `{"sub":"\u0031","exp":4102444800}`},
		{jwtFuzzValid, hdr, `{"sub":"1","exp":4102444800,}`},
		{jwtFuzzValid, hdr, `{"sub":"1","exp":4102444800} `},
		{jwtFuzzValid, hdr, `{"role":"admin","exp":4102444800,"iat":0}`},
	} {
		f.Add(s.token, s.header, s.claims, uint8(0), uint16(len(s.token)-1), byte('A'))
	}

	f.Fuzz(func(t *testing.T, token, header, claims string, op uint8, pos uint16, b byte) {
		// 1. The fuzzed token.
		_, err := auth.Verify(token)
		if err == nil {
			segs := strings.Split(token, ".")
			if len(segs) != 3 || segs[2] != jwtSign(segs[0]+"."+segs[1]) {
				t.Fatalf("accepted %q, which is not the canonical HS256 signature of its segments", token)
			}
			h, e1 := base64.RawURLEncoding.Strict().DecodeString(segs[0])
			c, e2 := base64.RawURLEncoding.Strict().DecodeString(segs[1])
			if e1 != nil || e2 != nil || strings.ContainsAny(segs[0]+segs[1], "\r\n") {
				t.Fatalf("accepted %q with non-canonical segments", token)
			}
			if accept, decided := jwtVerdict(h, c); decided && !accept {
				t.Fatalf("accepted %q: header %s claims %s", token, h, c)
			}
		}

		// 2. The fuzzed header and claims, correctly signed.
		input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(claims))
		resigned := input + "." + jwtSign(input)
		_, err = auth.Verify(resigned)
		if accept, decided := jwtVerdict([]byte(header), []byte(claims)); decided && accept != (err == nil) {
			t.Fatalf("header %s claims %s: accepted %v (%v), want %v", header, claims, err == nil, err, accept)
		}

		// 3. A mutation of a valid token.
		m := mutate(jwtFuzzValid, op, pos, b)
		if _, err := auth.Verify(m); (err == nil) != (m == jwtFuzzValid) {
			t.Fatalf("mutation %q of the valid token: err %v", m, err)
		}

		// 4. The fast path never accepts what golang-jwt would not.
		for _, tok := range []string{token, resigned, m} {
			checkFastAgrees(t, auth, tok)
		}
	})
}

// checkFastAgrees fails when the fast path accepts a token golang-jwt
// refuses, or reads different claims from it.
func checkFastAgrees(t *testing.T, auth *gateway.Auth, token string) {
	t.Helper()
	fast, ok := auth.VerifyFast(token)
	if !ok {
		return
	}
	slow, err := auth.VerifySlow(token)
	if err != nil {
		t.Fatalf("fast path accepted %q, golang-jwt refused it: %v", token, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast path read %+v from %q, golang-jwt %+v", fast, token, slow)
	}
}

// TestFastJWTPath pins which tokens take the fast path. Minted tokens
// must (or the hot path silently falls back to the slow verifier), and the
// edge cases of its narrow grammar must either agree with golang-jwt or
// be left to it.
func TestFastJWTPath(t *testing.T) {
	auth := gateway.NewAuth(testSecret)
	for _, role := range []string{"", gateway.RoleAdmin} {
		tok, err := auth.Mint("42", role, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, ok := auth.VerifyFast(tok)
		if !ok || c.Subject != "42" || c.Role != role {
			t.Fatalf("minted token (role %q) did not take the fast path: %+v %v", role, c, ok)
		}
		checkFastAgrees(t, auth, tok)
		i := len(tok) - 10 // inside the signature
		swap := map[bool]string{true: "B", false: "A"}[tok[i] == 'A']
		if _, ok := auth.VerifyFast(tok[:i] + swap + tok[i+1:]); ok {
			t.Fatal("fast path accepted a token with a changed signature")
		}
	}
	hdr := strings.Split(jwtFuzzValid, ".")[0]
	now := time.Now().Unix()
	for _, tc := range []struct {
		claims string
		fast   bool // whether the fast path decides it (accepts)
	}{
		{fmt.Sprintf(`{"sub":"7","exp":%d}`, now+60), true},
		{fmt.Sprintf(`{"exp":%d,"sub":"7","role":"admin","nbf":%d,"iat":%d}`, now+60, now-60, now), true},
		{fmt.Sprintf(`{"sub":"7","exp":%d}`, now-60), false},                   // expired
		{fmt.Sprintf(`{"sub":"7","exp":%d,"nbf":%d}`, now+600, now+60), false}, // not yet valid
		{`{"sub":"7"}`, false}, // no exp
		{fmt.Sprintf(`{"sub":"7","exp":%d,"sub":"8"}`, now+60), false},                  // duplicate key
		{fmt.Sprintf(`{"sub":"7","exp":%d.5}`, now+60), false},                          // fraction
		{fmt.Sprintf(`{"sub":"7","exp":%de0}`, now+60), false},                          // exponent
		{fmt.Sprintf(`{"sub":"7","exp":0%d}`, now+60), false},                           // leading zero
		{fmt.Sprintf(`{"sub":"7","exp":"%d"}`, now+60), false},                          // quoted number
		{fmt.Sprintf(`{"sub":"\u0037","exp":%d}`, now+60), false},                       // escape
		{fmt.Sprintf(`{"sub":"7","exp":%d,"aud":"x"}`, now+60), false},                  // other claim
		{fmt.Sprintf(`{"Sub":"7","exp":%d}`, now+60), false},                            // case-folded key
		{fmt.Sprintf(`{"sub":"7", "exp":%d}`, now+60), false},                           // whitespace
		{fmt.Sprintf(`{"sub":"7","exp":%d}x`, now+60), false},                           // trailing bytes
		{fmt.Sprintf(`{"sub":"7","exp":%d,}`, now+60), false},                           // trailing comma
		{fmt.Sprintf(`{"sub":"%s","exp":%d}`, strings.Repeat("7", 200), now+60), false}, // too long
	} {
		input := hdr + "." + base64.RawURLEncoding.EncodeToString([]byte(tc.claims))
		tok := input + "." + jwtSign(input)
		if _, ok := auth.VerifyFast(tok); ok != tc.fast {
			t.Errorf("claims %s: fast path accepted %v, want %v", tc.claims, ok, tc.fast)
		}
		checkFastAgrees(t, auth, tok)
	}
}
