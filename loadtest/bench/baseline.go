package main

import (
	"context"
	"log"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock"
)

// runBaseline is the floor any gateway must pay: net/http plus go-redis and
// one EVALSHA of seckill's own buy script per request, nothing else (no
// auth, no flow control, no JSON body, no publish). The bench runs it as its
// own process so its CPU time can be read from /proc.
func runBaseline(addr, redisAddr, prefix string, aid, iid int64) error {
	// RESP2, as seckill uses: the floor should be as cheap as go-redis gets.
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, Protocol: 2})
	defer rdb.Close()
	st := stock.NewStore(rdb, stock.Keys{Prefix: prefix})
	var next atomic.Int64
	next.Store(time.Now().UnixNano())
	http.HandleFunc("POST /buy", func(w http.ResponseWriter, r *http.Request) {
		user, _ := strconv.ParseInt(r.URL.Query().Get("u"), 10, 64)
		res, err := st.Buy(r.Context(), stock.BuyRequest{ActivityID: aid, ItemID: iid, UserID: user, OrderID: next.Add(1), Quantity: 1})
		if err != nil {
			w.WriteHeader(http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"order_id":"` + strconv.FormatInt(res.OrderID, 10) + `","status":"PENDING"}`))
	})
	http.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := rdb.Ping(context.Background()).Err(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	log.Printf("baseline listening on %s", addr)
	return http.ListenAndServe(addr, nil)
}
