package scenario

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/seckill/seckill/gateway/api"
)

// OpKind is what an attempt asks the gateway to do.
type OpKind uint8

const (
	OpBuy    OpKind = iota // POST /api/v1/seckill
	OpPay                  // POST /api/v1/payments/callback
	OpCancel               // POST /api/v1/orders/{id}/cancel
)

var opNames = [...]string{OpBuy: "buy", OpPay: "pay", OpCancel: "cancel"}

// String names the operation as the reports do: buy, pay or cancel.
func (k OpKind) String() string { return opNames[k] }

// Attempt is one HTTP request a scenario wants sent, and, once answered, what
// came back. A retry is a new attempt that copies the request of the one it
// retries (same user, Idempotency-Key and body), so the results file holds
// every send and each send has its own answer.
type Attempt struct {
	ID      int // index in source.all; travels in the URL as ?lt=<id>
	Kind    OpKind
	Buyer   int    // 0-based logical buyer; user id = session.userBase + buyer
	Key     string // Idempotency-Key, "" for none
	OrderID int64  // pay and cancel: the order acted on
	Body    []byte // pay: the signed callback body, identical on every retry
	// abandonAfter, when set, makes the client give up on the request after
	// this long, whatever the server does: a response lost on the way back.
	abandonAfter time.Duration
	Retries      int       // how many sends of this request came before this one
	Due          time.Time // not sent before this

	// The answer, filled in by the result consumer.
	Status     int    // HTTP status; 0 = no response (timeout, transport error)
	Code       string // error code of the body, TIMEOUT or TRANSPORT when status is 0
	GotOrder   int64  // order_id of a 202 (buy) or 200 (pay, cancel)
	gotStatus  string // order status of a 200 pay or cancel
	retryAfter time.Duration
	answered   bool
}

// Retryable reports whether the answer leaves the outcome unknown or
// temporarily refused: no response, 5xx, or 429. A client may send the same
// request again; anything else is a final answer.
func (a *Attempt) Retryable() bool {
	return a.Status == 0 || a.Status >= 500 || a.Status == http.StatusTooManyRequests
}

// Retry returns the next send of the same request, due after backoff or
// the server's Retry-After, whichever is longer, but at most maxWait (a
// client in a hurry, e.g. before a payment window closes, waits less than
// the server suggests).
func (a *Attempt) Retry(now time.Time, backoff, maxWait time.Duration) *Attempt {
	backoff = min(max(backoff, a.retryAfter), maxWait)
	return &Attempt{
		Kind: a.Kind, Buyer: a.Buyer, Key: a.Key, OrderID: a.OrderID, Body: a.Body,
		Retries: a.Retries + 1, Due: now.Add(backoff),
	}
}

// Answer is the part of a response body the scenarios read: a 202's or a
// 200's order (both carry order_id and status), or an error.
type Answer struct {
	api.BuyAccepted
	api.ErrorResponse
}

// record copies a vegeta result's outcome into its attempt.
func record(a *Attempt, r *vegeta.Result) {
	a.answered = true
	a.Status = int(r.Code)
	if a.Status == 0 {
		a.Code = "TRANSPORT"
		if IsTimeout(r.Error) {
			a.Code = "TIMEOUT"
		}
		return
	}
	var ans Answer
	if err := json.Unmarshal(r.Body, &ans); err != nil {
		a.Code = "UNPARSEABLE"
		return
	}
	a.Code = ans.Error.Code
	if a.Status < 300 {
		a.GotOrder = int64(ans.OrderID)
		a.gotStatus = ans.Status
	}
	if s := r.Headers.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			a.retryAfter = time.Duration(n) * time.Second
		}
	}
}

// IsTimeout reports whether a vegeta error text is a client timeout or a
// request cancelled before its answer: no clear answer.
func IsTimeout(err string) bool {
	return strings.Contains(err, "Timeout") || strings.Contains(err, "deadline exceeded") ||
		strings.Contains(err, "context canceled")
}

// label names an attempt's outcome in the progress line, the report and the
// plot: "202", "409 SOLD_OUT", "TIMEOUT"; non-buys are prefixed with their kind.
func label(a *Attempt) string {
	var s string
	switch {
	case a.Status == 0:
		s = a.Code
	case a.Code != "":
		s = strconv.Itoa(a.Status) + " " + a.Code
	default:
		s = strconv.Itoa(a.Status)
	}
	if a.Kind != OpBuy {
		s = a.Kind.String() + " " + s
	}
	return s
}
