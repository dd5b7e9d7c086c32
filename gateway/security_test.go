package gateway_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock"
)

// syncBuffer is a log sink that many handler goroutines may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// permissiveFlow are the Sentinel rules every parallel harness loads (see
// setupWith); a replica must load the same ones, since the rules are global.
var permissiveFlow = gateway.FlowConfig{LogDir: sentinelLogDir, BuyQPS: 1e6, UserQPS: 100_000,
	BreakerErrors: 1e6, BreakerWindowMs: 1000, BreakerRetryMs: 1000}

// replica is a second gateway over the harness's Redis, PostgreSQL and NATS,
// as a horizontally scaled deployment runs one. The test owns its router (to
// list the routes), its catalog (to look inside) and its log (to grep).
type replica struct {
	srv     *gateway.Server
	http    *httptest.Server
	catalog *order.Catalog
	logs    *syncBuffer
}

func (h *harness) replica() *replica {
	h.t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sem := stock.NewSemaphore(h.rdb, h.keys, stock.SemaphoreConfig{Name: "buy", Capacity: 512, Block: 32,
		TTL: 5 * time.Second, Holder: fmt.Sprintf("replica-%s-%d", h.t.Name(), time.Now().UnixNano())})
	h.t.Cleanup(func() { _ = sem.Close(context.Background()) })
	h.t.Cleanup(runLeases(log, nil, sem)) // the node lease is the harness's, renewed there
	catalog := order.NewCatalog(h.store, 50*time.Millisecond)
	srv, err := gateway.New(gateway.Deps{
		Log: log, Auth: h.auth, Stock: h.stock, SoldOut: stock.NewSoldOut(h.stock), Semaphore: sem,
		Node: h.node, Catalog: catalog, Admin: order.NewAdmin(h.store, h.stock),
		Orders: order.NewOrders(h.store, order.NewLookup(h.store, h.broker), h.canceller), Signer: h.signer,
		Publisher: order.NewPublisher(h.broker, 2*time.Second), Broker: h.broker,
		Registry: prometheus.NewRegistry(), Flow: permissiveFlow, IdempotencyTTL: time.Hour,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	r := &replica{srv: srv, http: httptest.NewServer(srv.Handler()), catalog: catalog, logs: logs}
	h.t.Cleanup(r.http.Close)
	return r
}

// on returns a copy of the harness whose requests go to the replica.
func (h *harness) on(r *replica) *harness {
	c := *h
	c.srv = r.http
	return &c
}

// Routes that need no bearer token, and why. Everything under /admin/ must
// refuse anyone but an admin; everything else must be listed in userRoutes.
// A route added later lands in neither list and fails this test until it is
// classified, and an /admin/ route without admin auth fails it outright.
var publicRoutes = map[string]string{
	"GET /healthz":                   "ops",
	"GET /readyz":                    "ops",
	"GET /metrics":                   "ops",
	"GET /api/v1/activities/:id":     "public activity view",
	"POST /api/v1/payments/callback": "authenticated by X-Signature, not a JWT",
}

var userRoutes = map[string]bool{
	"POST /api/v1/seckill":           true,
	"GET /api/v1/orders/:id":         true,
	"POST /api/v1/orders/:id/cancel": true,
}

func TestEveryRouteIsAuthenticated(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 10})
	r := h.replica()
	h = h.on(r)
	engine, ok := r.srv.Handler().(*gin.Engine)
	if !ok {
		t.Fatalf("Handler() is a %T, not a *gin.Engine: this test cannot list the routes", r.srv.Handler())
	}
	routes := engine.Routes()
	if len(routes) < len(publicRoutes)+len(userRoutes)+3 {
		t.Fatalf("only %d routes: %v", len(routes), routes)
	}
	user := h.userToken(77)
	forged := mintWith(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdefghij"),
		gateway.Claims{Role: gateway.RoleAdmin, RegisteredClaims: jwt.RegisteredClaims{Subject: "77",
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
	// Bodies that would change state if a handler ever ran without auth.
	bodies := map[string]string{
		"POST /admin/v1/activities": `{"name":"x","start_at":"2026-01-01T00:00:00Z","end_at":"2099-01-01T00:00:00Z",` +
			`"pay_timeout_seconds":60,"per_user_limit":1,"items":[{"name":"a","price_cents":1,"stock":1}]}`,
		"POST /api/v1/seckill": fmt.Sprintf(`{"activity_id":%q,"item_id":%q,"quantity":1}`, aid, iid),
	}
	path := func(p string) string {
		var segs []string
		for _, s := range strings.Split(p, "/") {
			if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
				s = aid
			}
			segs = append(segs, s)
		}
		return strings.Join(segs, "/")
	}
	before := h.snapshot()
	var admin []gin.RouteInfo
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		seen[key] = true
		body := bodies[key]
		var b any
		if body != "" {
			b = body
		}
		expect := func(who, token string, status int, code string) {
			t.Helper()
			got := h.do(rt.Method, path(rt.Path), token, b)
			if got.Status != status || got.code() != code {
				t.Errorf("%s with %s: %d %s, want %d %s", key, who, got.Status, got.Body, status, code)
			}
		}
		switch {
		case publicRoutes[key] != "":
			continue
		case strings.HasPrefix(rt.Path, "/admin/"):
			admin = append(admin, rt)
			expect("no token", "", 401, "UNAUTHORIZED")
			expect("a forged admin token", forged, 401, "UNAUTHORIZED")
			expect("an alg:none admin token", algNoneToken("admin"), 401, "UNAUTHORIZED")
			expect("a user token", user, 403, "FORBIDDEN")
		case userRoutes[key]:
			expect("no token", "", 401, "UNAUTHORIZED")
			expect("a forged token", forged, 401, "UNAUTHORIZED")
		default:
			t.Errorf("route %s is not classified: add it to publicRoutes or userRoutes, or mount it under /admin/", key)
		}
	}
	for key := range userRoutes {
		if !seen[key] {
			t.Errorf("user route %s is no longer mounted; update this test", key)
		}
	}
	if len(admin) < 3 {
		t.Fatalf("found %d admin routes, want at least create, publish and stats", len(admin))
	}
	if after := h.snapshot(); after != before {
		t.Fatalf("refused requests changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The admin token does get through each admin route's auth (so the
	// checks above did not pass for some other reason).
	for _, rt := range admin {
		got := h.do(rt.Method, path(rt.Path), h.admin, `{}`)
		if got.Status == 401 || got.Status == 403 {
			t.Errorf("%s %s with the admin token: %d %s", rt.Method, rt.Path, got.Status, got.Body)
		}
	}
}

func TestOtherUsersOrdersLookNonexistent(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 5})
	const owner, other = 1, 2
	ids := h.buyN(aid, iid, owner, 1)
	id := ids[0]
	cancelledID := h.buyN(aid, iid, 3, 1)[0]
	unknown := h.do("GET", "/api/v1/orders/4242424242", h.userToken(other), nil)
	if unknown.Status != 404 {
		t.Fatalf("unknown order: %d %s", unknown.Status, unknown.Body)
	}
	// Another user learns nothing: the same 404 body as for an order that
	// does not exist, whatever state the order is in, and nothing changes.
	probe := func(stage, id string) {
		t.Helper()
		before := h.snapshot()
		for _, req := range []struct{ method, path string }{
			{"GET", "/api/v1/orders/" + id},
			{"POST", "/api/v1/orders/" + id + "/cancel"},
		} {
			r := h.do(req.method, req.path, h.userToken(other), nil)
			if r.Status != 404 || !bytes.Equal(r.Body, unknown.Body) {
				t.Errorf("%s: %s %s by another user: %d %s, want the unknown-order 404 %s",
					stage, req.method, req.path, r.Status, r.Body, unknown.Body)
			}
		}
		if after := h.snapshot(); after != before {
			t.Fatalf("%s: another user's requests changed state", stage)
		}
	}
	probe("accepted, not persisted", id)
	h.drain()
	probe("PENDING", id)
	if r := h.pay(id, "T-owner", 99900); r.Status != 200 {
		t.Fatalf("pay: %d %s", r.Status, r.Body)
	}
	probe("PAID", id)
	if r := h.do("POST", "/api/v1/orders/"+cancelledID+"/cancel", h.userToken(3), nil); r.Status != 200 {
		t.Fatalf("owner cancel: %d %s", r.Status, r.Body)
	}
	probe("CANCELLED", cancelledID)
	if r := h.do("GET", "/api/v1/orders/"+id, h.userToken(owner), nil); r.Status != 200 || decode[api.Order](t, r).Status != api.OrderPaid {
		t.Fatalf("owner read: %d %s", r.Status, r.Body)
	}
}

// b64 is JWT's segment encoding.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestJWTRefused(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 10})
	exp := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(time.Now().Add(d)) }
	claims := func(role string) gateway.Claims {
		return gateway.Claims{Role: role, RegisteredClaims: jwt.RegisteredClaims{Subject: "77", ExpiresAt: exp(time.Hour)}}
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	secret := []byte(testSecret)
	valid := mintWith(t, jwt.SigningMethodHS256, secret, claims(gateway.RoleAdmin))
	parts := strings.Split(valid, ".")
	hdr, sig := parts[0], parts[2]
	resign := func(header, payload string) string {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(header + "." + payload))
		return header + "." + payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	rs256 := mintWith(t, jwt.SigningMethodRS256, rsaKey, claims(gateway.RoleAdmin))
	farExp := time.Now().Add(time.Hour).Unix()

	tokens := []struct{ name, token string }{
		{"RS256 signed with a generated key", rs256},
		{"PS256 signed with a generated key", mintWith(t, jwt.SigningMethodPS256, rsaKey, claims(gateway.RoleAdmin))},
		{"ES256 signed with a generated key", mintWith(t, jwt.SigningMethodES256, ecKey, claims(gateway.RoleAdmin))},
		{"EdDSA signed with a generated key", mintWith(t, jwt.SigningMethodEdDSA, edKey, claims(gateway.RoleAdmin))},
		{"HS384 with the right secret", mintWith(t, jwt.SigningMethodHS384, secret, claims(gateway.RoleAdmin))},
		{"HS256 keyed with the RSA public key (key confusion)", mintWith(t, jwt.SigningMethodHS256, pubPEM, claims(gateway.RoleAdmin))},
		{"RS256 token relabelled HS256", b64(`{"alg":"HS256","typ":"JWT"}`) + "." + strings.Split(rs256, ".")[1] + "." + strings.Split(rs256, ".")[2]},
		{"alg None", b64(`{"alg":"None","typ":"JWT"}`) + "." + parts[1] + "."},
		{"alg NONE with the HS256 signature", b64(`{"alg":"NONE"}`) + "." + parts[1] + "." + sig},
		{"alg hs256 (lower case), validly keyed", resign(b64(`{"alg":"hs256","typ":"JWT"}`), parts[1])},
		{"no alg, validly keyed", resign(b64(`{"typ":"JWT"}`), parts[1])},
		{"alg as a list, validly keyed", resign(b64(`{"alg":["HS256"]}`), parts[1])},
		{"nbf an hour ahead", mintWith(t, jwt.SigningMethodHS256, secret, gateway.Claims{Role: gateway.RoleAdmin,
			RegisteredClaims: jwt.RegisteredClaims{Subject: "77", ExpiresAt: exp(2 * time.Hour), NotBefore: exp(time.Hour)}})},
		{"exp 30 s ago (beyond the 5 s leeway)", mintWith(t, jwt.SigningMethodHS256, secret, gateway.Claims{Role: gateway.RoleAdmin,
			RegisteredClaims: jwt.RegisteredClaims{Subject: "77", ExpiresAt: exp(-30 * time.Second)}})},
		{"exp 0", resign(hdr, b64(`{"sub":"77","role":"admin","exp":0}`))},
		{"exp null", resign(hdr, b64(`{"sub":"77","role":"admin","exp":null}`))},
		{"exp not a number", resign(hdr, b64(`{"sub":"77","role":"admin","exp":"never"}`))},
		{"exp overflowing", resign(hdr, b64(`{"sub":"77","role":"admin","exp":1e400}`))},
		{"payload tampered (sub), HS256 header kept", hdr + "." + b64(fmt.Sprintf(`{"sub":"78","role":"admin","exp":%d}`, farExp)) + "." + sig},
		{"payload of a user token made admin", func() string {
			u := strings.Split(h.userToken(77), ".")
			return u[0] + "." + b64(fmt.Sprintf(`{"sub":"77","role":"admin","exp":%d}`, farExp)) + "." + u[2]
		}()},
		{"header tampered (kid added)", b64(`{"alg":"HS256","typ":"JWT","kid":"x"}`) + "." + parts[1] + "." + sig},
		{"empty signature", parts[0] + "." + parts[1] + "."},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(h.userToken(5), ".")[2]},
		{"signature truncated", parts[0] + "." + parts[1] + "." + sig[:len(sig)-2]},
		{"signature with padding", valid + "="},
		{"standard base64 signature", parts[0] + "." + parts[1] + "." + base64.StdEncoding.EncodeToString(mustB64(t, sig))},
		{"four segments", valid + ".x"},
		{"two segments", parts[0] + "." + parts[1]},
		{"token twice", valid + " " + valid},
	}
	buy := fmt.Sprintf(`{"activity_id":%q,"item_id":%q,"quantity":1}`, aid, iid)
	activity := `{"name":"x","start_at":"2026-01-01T00:00:00Z","end_at":"2099-01-01T00:00:00Z",` +
		`"pay_timeout_seconds":60,"per_user_limit":1,"items":[{"name":"a","price_cents":1,"stock":1}]}`
	before := h.snapshot()
	for _, tc := range tokens {
		if _, err := h.auth.Verify(tc.token); err == nil {
			t.Errorf("%s: Verify accepted it", tc.name)
		}
		for _, req := range []struct{ method, path, body string }{
			{"POST", "/api/v1/seckill", buy},
			{"POST", "/admin/v1/activities", activity},
			{"GET", "/admin/v1/activities/" + aid + "/stats", ""},
		} {
			var body any
			if req.body != "" {
				body = req.body
			}
			r := h.do(req.method, req.path, tc.token, body)
			if r.Status != 401 || r.code() != "UNAUTHORIZED" {
				t.Errorf("%s on %s %s: %d %s, want 401 UNAUTHORIZED", tc.name, req.method, req.path, r.Status, r.Body)
			}
		}
	}
	if after := h.snapshot(); after != before {
		t.Fatalf("refused tokens changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The untouched token does work (so the refusals above are about what
	// was changed).
	if _, err := h.auth.Verify(valid); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A token is only accepted in the one encoding it was signed in: base64
// decoders that skip newlines or ignore the spare bits of the last character
// would otherwise accept many strings for one signature, and anything keyed
// by the token string (a deny list, a cache) could be sidestepped.
func TestJWTSignatureEncodingIsCanonical(t *testing.T) {
	t.Parallel()
	auth := gateway.NewAuth(testSecret)
	valid, err := auth.Mint("42", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Verify(valid); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	parts := strings.Split(valid, ".")
	sig := parts[2]
	// A 32-byte MAC is 43 base64 characters: the last carries 2 spare bits.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	var variants []string
	for spare := 1; spare < 4; spare++ {
		variants = append(variants, sig[:len(sig)-1]+string(alphabet[last^spare]))
	}
	variants = append(variants, sig[:10]+"\n"+sig[10:], sig+"\r\n", sig[:20]+"\r"+sig[20:])
	for _, v := range variants {
		tok := parts[0] + "." + parts[1] + "." + v
		if !bytes.Equal(mustB64Lenient(v), mustB64(t, sig)) {
			t.Fatalf("variant %q does not decode to the same MAC; the test is wrong", v)
		}
		if _, err := auth.Verify(tok); err == nil {
			t.Errorf("Verify accepted the signature re-encoded as %q", v)
		}
	}
}

func mustB64Lenient(s string) []byte {
	b, _ := base64.RawURLEncoding.DecodeString(s)
	return b
}

func TestPaymentSignatureCoversTheExactRawBody(t *testing.T) {
	t.Parallel()
	h := setup(t)
	r := h.replica()
	h = h.on(r)
	aid, iid := h.publishActivity(activityOpts{stock: 5})
	id := h.buyN(aid, iid, 1, 1)[0]
	h.drain()
	paySecret := testSecret + "-payments" // the harness's signer
	body := fmt.Sprintf(`{"order_id":%q,"trade_no":"T-raw","amount_cents":99900,"paid_at":"2026-11-11T00:01:02Z"}`, id)
	sig := h.signer.Sign([]byte(body))
	flip := func(s string, i int) string { // another hex digit at i
		c := "0"
		if s[i] == '0' {
			c = "1"
		}
		return s[:i] + c + s[i+1:]
	}
	plain := sha256.Sum256([]byte(body))
	mac512 := hmac.New(sha512.New, []byte(paySecret))
	mac512.Write([]byte(body))
	reordered := fmt.Sprintf(`{"trade_no":"T-raw","order_id":%q,"amount_cents":99900,"paid_at":"2026-11-11T00:01:02Z"}`, id)
	cases := []struct{ name, body, sig string }{
		{"one byte differs (amount)", strings.Replace(body, "99900", "99901", 1), sig},
		{"one byte differs (trade)", strings.Replace(body, "T-raw", "T-raW", 1), sig},
		{"whitespace after a colon", strings.Replace(body, `"order_id":`, `"order_id": `, 1), sig},
		{"trailing newline", body + "\n", sig},
		{"leading space", " " + body, sig},
		{"keys reordered", reordered, sig},
		{"same value, escaped", strings.Replace(body, "T-raw", `\u0054-raw`, 1), sig},
		{"right prefix, wrong last byte", body, flip(sig, len(sig)-1)},
		{"wrong first byte", body, flip(sig, 0)},
		{"one hex digit short", body, sig[:len(sig)-1]},
		{"one byte short", body, sig[:len(sig)-2]},
		{"one byte long", body, sig + "00"},
		{"twice as long", body, sig + sig},
		{"empty", body, ""},
		{"not hex", body, sig[:len(sig)-1] + "g"},
		{"0x prefix", body, "0x" + sig[:len(sig)-2]},
		{"space inside", body, sig[:32] + " " + sig[32:]},
		{"base64 instead of hex", body, base64.StdEncoding.EncodeToString(mustHex(t, sig))},
		{"plain SHA-256 of the body", body, hex.EncodeToString(plain[:])},
		{"HMAC-SHA512", body, hex.EncodeToString(mac512.Sum(nil))},
		{"HMAC under the JWT secret", body, gatewaySignerFor(testSecret).Sign([]byte(body))},
	}
	before := h.snapshot()
	var answers []string
	for _, c := range cases {
		got := h.do("POST", "/api/v1/payments/callback", "", c.body, "X-Signature", c.sig)
		if got.Status != 401 || got.code() != "INVALID_SIGNATURE" {
			t.Errorf("%s: %d %s, want 401 INVALID_SIGNATURE", c.name, got.Status, got.Body)
		}
		answers = append(answers, string(got.Body))
	}
	if after := h.snapshot(); after != before {
		t.Fatalf("refused callbacks changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// What is signed is the bytes, not a canonical form of the JSON: the
	// reordered body with its own signature is a valid payment.
	got := h.do("POST", "/api/v1/payments/callback", "", reordered, "X-Signature", h.signer.Sign([]byte(reordered)))
	if got.Status != 200 || decode[api.Order](t, got).Status != api.OrderPaid {
		t.Fatalf("correctly signed reordered body: %d %s", got.Status, got.Body)
	}
	answers = append(answers, string(got.Body))
	// Neither the answers nor the log repeat a signature or the secret.
	for _, text := range append(answers, r.logs.String()) {
		for _, c := range cases {
			if len(c.sig) >= 16 && strings.Contains(text, c.sig) {
				t.Errorf("signature %q echoed in %q", c.sig, text)
			}
		}
		for _, s := range []string{paySecret, hex.EncodeToString([]byte(paySecret)), sig, sig[:16]} {
			if strings.Contains(text, s) {
				t.Errorf("%q leaked in %q", s, text)
			}
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The signature check must not leak, through its timing, how many leading
// bytes of a guess are right. Timing it in a test would be flaky, so this
// test pins the code instead: Signer.Verify compares with hmac.Equal
// (constant time in the length of the MAC) and never with == or bytes.Equal.
// The prefix case in TestPaymentSignatureCoversTheExactRawBody covers the
// behaviour.
func TestSignerComparesInConstantTime(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "payment.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var verify *ast.FuncDecl
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "Verify" && fn.Recv != nil {
			verify = fn
		}
	}
	if verify == nil {
		t.Fatal("payment.go has no Verify method")
	}
	var calls []string
	ast.Inspect(verify.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok {
					calls = append(calls, pkg.Name+"."+sel.Sel.Name)
				}
			}
		case *ast.BinaryExpr:
			if n.Op == token.EQL || n.Op == token.NEQ {
				if id, ok := n.Y.(*ast.Ident); !ok || id.Name != "nil" {
					t.Errorf("Verify compares with %s at %s; use hmac.Equal", n.Op, fset.Position(n.Pos()))
				}
			}
		}
		return true
	})
	sort.Strings(calls)
	has := func(name string) bool {
		i := sort.SearchStrings(calls, name)
		return i < len(calls) && calls[i] == name
	}
	if !has("hmac.Equal") {
		t.Errorf("Verify does not call hmac.Equal (calls %v)", calls)
	}
	for _, bad := range []string{"bytes.Equal", "bytes.Compare", "strings.EqualFold", "strings.Compare", "reflect.DeepEqual"} {
		if has(bad) {
			t.Errorf("Verify calls %s, which returns early on the first differing byte", bad)
		}
	}
}

// A valid token is not enough for a route guarded by another check, and a
// valid token for one secret is nothing under another: the secrets of two
// deployments never cross.
func TestTokensOfAnotherDeploymentAreRefused(t *testing.T) {
	t.Parallel()
	mine := gateway.NewAuth(testSecret)
	theirs := gateway.NewAuth(testSecret + "x")
	tok, err := theirs.Mint("1", gateway.RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Verify(tok); err == nil {
		t.Fatal("a token of another secret was accepted")
	}
	// The error never carries the secret or the token.
	_, err = mine.Verify(tok)
	for _, s := range []string{testSecret, tok} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("Verify's error %q contains %q", err, s)
		}
	}
}

// PostgreSQL text cannot hold NUL: a correctly signed callback whose
// trade_no has one used to reach the UPDATE and come back as a 500.
func TestPaymentTradeNoWithControlCharactersIsRefused(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 5})
	id := h.buyN(aid, iid, 1, 1)[0]
	h.drain()
	before := h.snapshot()
	for _, trade := range []string{`T\u0000`, `\u0000`, `T\n1`, `T\u007f`, `T\u0085`} {
		body := fmt.Sprintf(`{"order_id":%q,"trade_no":"%s","amount_cents":99900}`, id, trade)
		r := h.do("POST", "/api/v1/payments/callback", "", body, "X-Signature", h.signer.Sign([]byte(body)))
		if r.Status != 400 || r.code() != "INVALID_REQUEST" {
			t.Errorf("trade_no %s: %d %s, want 400 INVALID_REQUEST", trade, r.Status, r.Body)
		}
	}
	if after := h.snapshot(); after != before {
		t.Fatalf("refused callbacks changed state")
	}
	if r := h.pay(id, "T-ok", 99900); r.Status != 200 {
		t.Fatalf("valid payment: %d %s", r.Status, r.Body)
	}
}
