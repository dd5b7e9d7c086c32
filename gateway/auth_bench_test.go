package gateway

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seckill/seckill/gateway/api"
)

// BenchmarkVerify compares the fast path with golang-jwt on a minted token:
// go test -run '^$' -bench Verify -benchmem ./gateway
func BenchmarkVerify(b *testing.B) {
	a := NewAuth("bench-secret-bench-secret-0123456789")
	tok, err := a.Mint("1234567", "", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		verify func(string) (*Claims, error)
	}{{"fast", a.Verify}, {"golang-jwt", a.verifySlow}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuyBody compares the hand reader with encoding/json:
// go test -run '^$' -bench BuyBody -benchmem ./gateway
func BenchmarkBuyBody(b *testing.B) {
	body := []byte(`{"activity_id":"1234567890","item_id":"42","quantity":1}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := fastBuyBody(body); !ok {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r buyRequest
			if err := json.Unmarshal(body, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestAcceptedTwin: the 202 body encoding/json writes (SECKILL_ABLATE=resp202)
// is the hand-built one.
func TestAcceptedTwin(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	writeAccepted(c, 1<<62+5)
	twin, _ := json.Marshal(api.BuyAccepted{OrderID: 1<<62 + 5, Status: "PENDING"})
	if w.Code != 202 || w.Body.String() != string(twin) || w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("hand-built 202: %d %q %q, encoding/json %q", w.Code, w.Header().Get("Content-Type"), w.Body, twin)
	}
}

// BenchmarkAccepted compares the hand-built 202 with gin's c.JSON:
// go test -run '^$' -bench Accepted -benchmem ./gateway
func BenchmarkAccepted(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	for _, bc := range []struct {
		name  string
		write func()
	}{
		{"hand", func() { writeAccepted(c, 1<<62+5) }},
		{"c.JSON", func() { c.JSON(202, api.BuyAccepted{OrderID: 1<<62 + 5, Status: "PENDING"}) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w.Body.Reset()
				bc.write()
			}
		})
	}
}
