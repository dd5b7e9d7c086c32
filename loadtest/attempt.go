package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// opKind is what an attempt asks the gateway to do.
type opKind uint8

const (
	opBuy    opKind = iota // POST /api/v1/seckill
	opPay                  // POST /api/v1/payments/callback
	opCancel               // POST /api/v1/orders/{id}/cancel
)

var opNames = [...]string{opBuy: "buy", opPay: "pay", opCancel: "cancel"}

func (k opKind) String() string { return opNames[k] }

// attempt is one HTTP request a scenario wants sent, and, once answered, what
// came back. A retry is a new attempt that copies the request of the one it
// retries (same user, Idempotency-Key and body), so the results file holds
// every send and each send has its own answer.
type attempt struct {
	id      int // index in source.all; travels in the URL as ?lt=<id>
	kind    opKind
	buyer   int    // 0-based logical buyer; user id = session.userBase + buyer
	key     string // Idempotency-Key, "" for none
	orderID int64  // pay and cancel: the order acted on
	body    []byte // pay: the signed callback body, identical on every retry
	// abandonAfter, when set, makes the client give up on the request after
	// this long, whatever the server does: a response lost on the way back.
	abandonAfter time.Duration
	retries      int       // how many sends of this request came before this one
	due          time.Time // not sent before this

	// The answer, filled in by the result consumer.
	status     int    // HTTP status; 0 = no response (timeout, transport error)
	code       string // error code of the body, TIMEOUT or TRANSPORT when status is 0
	gotOrder   int64  // order_id of a 202 (buy) or 200 (pay, cancel)
	gotStatus  string // order status of a 200 pay or cancel
	retryAfter time.Duration
	answered   bool
}

// retryable reports whether the answer leaves the outcome unknown or
// temporarily refused: no response, 5xx, or 429. A client may send the same
// request again; anything else is a final answer.
func (a *attempt) retryable() bool {
	return a.status == 0 || a.status >= 500 || a.status == http.StatusTooManyRequests
}

// retry returns the next send of the same request, due after backoff or
// the server's Retry-After, whichever is longer, but at most maxWait (a
// client in a hurry, e.g. before a payment window closes, waits less than
// the server suggests).
func (a *attempt) retry(now time.Time, backoff, maxWait time.Duration) *attempt {
	backoff = min(max(backoff, a.retryAfter), maxWait)
	return &attempt{
		kind: a.kind, buyer: a.buyer, key: a.key, orderID: a.orderID, body: a.body,
		retries: a.retries + 1, due: now.Add(backoff),
	}
}

// answer is the part of a response body the scenarios read: a 202's or a
// 200's order, or an error code.
type answer struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
	Error   struct {
		Code string `json:"code"`
	} `json:"error"`
}

// record copies a vegeta result's outcome into its attempt.
func record(a *attempt, r *vegeta.Result) {
	a.answered = true
	a.status = int(r.Code)
	if a.status == 0 {
		a.code = "TRANSPORT"
		if isTimeout(r.Error) {
			a.code = "TIMEOUT"
		}
		return
	}
	var ans answer
	if err := json.Unmarshal(r.Body, &ans); err != nil {
		a.code = "UNPARSEABLE"
		return
	}
	a.code = ans.Error.Code
	if a.status < 300 {
		a.gotOrder, _ = strconv.ParseInt(ans.OrderID, 10, 64)
		a.gotStatus = ans.Status
	}
	if s := r.Headers.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			a.retryAfter = time.Duration(n) * time.Second
		}
	}
}

func isTimeout(err string) bool {
	return strings.Contains(err, "Timeout") || strings.Contains(err, "deadline exceeded") ||
		strings.Contains(err, "context canceled")
}

// label names an attempt's outcome in the progress line, the report and the
// plot: "202", "409 SOLD_OUT", "TIMEOUT"; non-buys are prefixed with their kind.
func label(a *attempt) string {
	var s string
	switch {
	case a.status == 0:
		s = a.code
	case a.code != "":
		s = strconv.Itoa(a.status) + " " + a.code
	default:
		s = strconv.Itoa(a.status)
	}
	if a.kind != opBuy {
		s = a.kind.String() + " " + s
	}
	return s
}
