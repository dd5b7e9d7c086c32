package stock_test

import (
	"strings"
	"testing"

	"github.com/seckill/seckill/stock"
)

func TestKeysLayout(t *testing.T) {
	t.Parallel()
	k := stock.Keys{}
	tests := []struct{ got, want string }{
		{k.Item(7, 12), "sk:{a:7:i:12}:item"},
		{k.Buyers(7, 12), "sk:{a:7:i:12}:buyers"},
		{k.Reservations(7, 12), "sk:{a:7:i:12}:resv"},
		{k.ReservationTimes(7, 12), "sk:{a:7:i:12}:resvt"},
		{k.Restocked(7, 12), "sk:{a:7:i:12}:restocked"},
		{k.Idempotency(7, 12, 42, "x}{y"), "sk:{a:7:i:12}:idem:42:x}{y"},
		{k.SemaphoreHolders("buy"), "sk:{sem:buy}:holders"},
		{k.SemaphoreLeases("buy"), "sk:{sem:buy}:leases"},
		{k.Node(1023), "sk:node:1023"},
		{stock.Keys{Prefix: "t1"}.Item(-1, 0), "t1:{a:-1:i:0}:item"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("key %q, want %q", tt.got, tt.want)
		}
	}
	// One item's keys share one hash tag, hence one cluster slot.
	tag := func(key string) string { return key[strings.IndexByte(key, '{') : strings.IndexByte(key, '}')+1] }
	for _, key := range []string{k.Buyers(7, 12), k.Reservations(7, 12), k.ReservationTimes(7, 12), k.Restocked(7, 12), k.Idempotency(7, 12, 1, "{z}")} {
		if tag(key) != tag(k.Item(7, 12)) {
			t.Errorf("%s is not in the item's slot", key)
		}
	}
}
