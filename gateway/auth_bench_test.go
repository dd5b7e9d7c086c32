package gateway

import (
	"encoding/json"
	"testing"
	"time"
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
