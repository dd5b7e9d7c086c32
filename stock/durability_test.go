package stock_test

import (
	"testing"

	"github.com/seckill/seckill/stock"
)

func TestParseDurability(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		setting string
		cluster bool
		want    stock.DurabilityMode
		ok      bool
	}{
		{"auto", true, stock.DurabilityReplica, true},
		{"auto", false, stock.DurabilityFence, true},
		{"", true, stock.DurabilityReplica, true},
		{"fence", true, stock.DurabilityFence, true},
		{"replica", false, stock.DurabilityReplica, true},
		{"always", false, "", false},
	} {
		got, err := stock.ParseDurability(tc.setting, tc.cluster)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseDurability(%q, %v) = %q, %v", tc.setting, tc.cluster, got, err)
		}
	}
}
