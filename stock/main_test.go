package stock_test

import (
	"os"
	"testing"

	"github.com/seckill/seckill/stock/stocktest"
)

// TestMain stops the shared Redis Cluster (stocktest.NewCluster) once the
// package's tests are done.
func TestMain(m *testing.M) { os.Exit(stocktest.Main(m)) }
