package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/order"
)

// Signer verifies payment callbacks: X-Signature is the hex HMAC-SHA256 of
// the exact raw body under the payment secret.
type Signer struct{ secret []byte }

// NewSigner returns a signer for the payment secret.
func NewSigner(secret string) *Signer { return &Signer{secret: []byte(secret)} }

// Sign returns the hex signature of body (what a provider sends).
func (s *Signer) Sign(body []byte) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify compares in constant time; a malformed signature is simply wrong.
func (s *Signer) Verify(body []byte, signature string) bool {
	got, err := hex.DecodeString(signature)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, s.secret)
	m.Write(body)
	return hmac.Equal(m.Sum(nil), got)
}

// paymentCallback is POST /api/v1/payments/callback. The signature is
// checked over the raw bytes before anything is parsed.
func (s *Server) paymentCallback(c *gin.Context) {
	body, ae := readBody(c)
	if ae != nil {
		_ = c.Error(ae)
		return
	}
	if !s.d.Signer.Verify(body, c.GetHeader("X-Signature")) {
		_ = c.Error(newError(http.StatusUnauthorized, api.CodeBadSignature, "X-Signature does not match the body"))
		return
	}
	var req api.PaymentCallback
	if err := json.Unmarshal(body, &req); err != nil {
		_ = c.Error(badRequest("malformed JSON body"))
		return
	}
	if req.OrderID == 0 || req.AmountCents == nil || !validTradeNo(req.TradeNo) {
		_ = c.Error(badRequest("order_id, trade_no (1-64 chars, no control characters) and amount_cents are required"))
		return
	}
	paidAt := time.Now()
	if req.PaidAt != nil {
		paidAt = *req.PaidAt
	}
	o, err := s.d.Orders.Pay(c, order.Payment{
		OrderID: int64(req.OrderID), TradeNo: req.TradeNo, AmountCents: *req.AmountCents, PaidAt: paidAt,
	})
	if err != nil {
		if errors.Is(err, order.ErrClosed) {
			s.d.Log.Warn("payment for a closed order must be refunded",
				"order_id", req.OrderID, "trade_no", req.TradeNo, "status", o.Status)
		}
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, orderOut(o))
}

// validTradeNo accepts 1-64 bytes without control characters: PostgreSQL
// text cannot hold NUL (a "\u0000" in the JSON was a 500), and a provider's
// trade number has no use for the others.
func validTradeNo(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// cancelOrder is POST /api/v1/orders/{id}/cancel, for the owner only.
func (s *Server) cancelOrder(c *gin.Context) {
	id, ae := pathID(c)
	if ae != nil {
		_ = c.Error(ae)
		return
	}
	o, err := s.d.Orders.CancelByUser(c, id, caller(c).UserID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.d.Log.Info("order cancelled by user", "order_id", strconv.FormatInt(o.ID, 10))
	c.JSON(http.StatusOK, orderOut(o))
}
