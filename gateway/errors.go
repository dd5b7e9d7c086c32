package gateway

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock"
)

// CodeInvalidQuantity is api.CodeInvalidQuantity under the name buy.go
// still uses; every other code is spelled api.Code*.
const CodeInvalidQuantity = api.CodeInvalidQuantity

// apiError is an error with its HTTP face. Handlers return domain errors or
// apiErrors through c.Error; errorMiddleware is the one place that turns them
// into responses and the one place that logs them.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int // seconds; 0 = no Retry-After header
	// expected marks a 5xx that is part of normal operation (retry shortly)
	// and is not logged as a failure.
	expected bool
	cause    error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.Code + ": " + e.Message + ": " + e.cause.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *apiError) Unwrap() error { return e.cause }

func newError(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

func badRequest(msg string) *apiError {
	return newError(http.StatusBadRequest, api.CodeInvalidRequest, msg)
}

var errNotFound = newError(http.StatusNotFound, api.CodeNotFound, "not found")

// unavailable wraps an infrastructure failure: the user sees a stable 503,
// the log sees the cause.
func unavailable(msg string, cause error) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: api.CodeUnavailable, Message: msg, RetryAfter: 1, cause: cause}
}

// toAPIError maps every domain error to its response. An error it does not
// know is an internal error: never guessed to be a business outcome.
func toAPIError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, order.ErrNotFound):
		return errNotFound
	case errors.Is(err, order.ErrInvalid):
		msg := strings.TrimPrefix(err.Error(), order.ErrInvalid.Error()+": ")
		return &apiError{Status: http.StatusBadRequest, Code: api.CodeInvalidRequest, Message: msg}
	case errors.Is(err, order.ErrAlreadyPublished):
		return newError(http.StatusConflict, api.CodeAlreadyPublished, "activity is already published")
	case errors.Is(err, order.ErrNotPending):
		return newError(http.StatusConflict, api.CodeNotPending, "order is not pending")
	case errors.Is(err, order.ErrClosed):
		return newError(http.StatusConflict, api.CodeOrderClosed, "order is closed to payment; refund the trade")
	case errors.Is(err, order.ErrDuplicateTrade):
		return newError(http.StatusConflict, api.CodeOrderClosed, "trade_no already paid another order")
	case errors.Is(err, order.ErrAmountMismatch):
		return newError(http.StatusBadRequest, api.CodeAmountMismatch, "amount_cents does not match the order")
	case errors.Is(err, order.ErrNotPersisted):
		return &apiError{Status: http.StatusServiceUnavailable, Code: api.CodeUnavailable,
			Message: "order is being processed, retry shortly", RetryAfter: 1, expected: true}
	case errors.Is(err, stock.ErrSoldOut):
		return newError(http.StatusConflict, api.CodeSoldOut, "item is sold out")
	case errors.Is(err, stock.ErrLimitExceeded):
		return newError(http.StatusConflict, api.CodeLimitExceeded, "per-user limit reached for this item")
	case errors.Is(err, stock.ErrNotStarted):
		return newError(http.StatusForbidden, api.CodeNotStarted, "the sale has not started")
	case errors.Is(err, stock.ErrEnded):
		return newError(http.StatusForbidden, api.CodeEnded, "the sale has ended")
	case errors.Is(err, stock.ErrBusy):
		return &apiError{Status: http.StatusTooManyRequests, Code: api.CodeBusy, Message: "too many buys in flight, retry shortly", RetryAfter: 1}
	case errors.Is(err, stock.ErrLeaseLost), order.IsUnavailable(err):
		return unavailable("service temporarily unavailable", err)
	}
	return &apiError{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: "internal error", cause: err}
}

// errorMiddleware writes the response for the last error a handler recorded
// and logs server-side failures. During an outage every request fails the
// same way, so a failure is logged at most once a second per code, with the
// number of failures it stands for.
func errorMiddleware(log *slog.Logger) gin.HandlerFunc {
	var mu sync.Mutex
	last := map[string]time.Time{}
	suppressed := map[string]int{}
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 || c.Writer.Written() {
			return
		}
		ae := toAPIError(c.Errors.Last().Err)
		if ae.Status >= 500 && !ae.expected {
			// Rate-limited per code and message, so one noisy cause does
			// not hide another.
			key := ae.Code + ae.Message
			mu.Lock()
			now := time.Now()
			logIt := now.Sub(last[key]) >= time.Second
			n := suppressed[key]
			if logIt {
				last[key], suppressed[key] = now, 0
			} else {
				suppressed[key]++
			}
			mu.Unlock()
			if logIt {
				log.Error("request failed", "method", c.Request.Method, "path", c.FullPath(),
					"code", ae.Code, "err", ae.Error(), "similar_failures_not_logged", n)
			}
		}
		writeError(c, ae)
	}
}

func writeError(c *gin.Context, ae *apiError) {
	if ae.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	if ae.Status == http.StatusRequestEntityTooLarge {
		// Close rather than read the rest of the body: otherwise net/http
		// drains up to 256 KiB of a chunked body before sending the 413.
		c.Header("Connection", "close")
	}
	c.AbortWithStatusJSON(ae.Status, api.ErrorResponse{Error: api.Error{Code: ae.Code, Message: ae.Message}})
}
