package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/seckill/seckill/gateway/api"
)

// ID is api.ID under the name buy.go and buybody.go use.
type ID = api.ID

// limitBody refuses a body larger than max: at once from Content-Length
// (the body is never read), and while reading for chunked bodies that lie.
func limitBody(max int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > max {
			writeError(c, newError(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "request body too large"))
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, max)
		c.Next()
	}
}

// decodeJSON reads exactly one JSON value from the body into v (trailing
// data is an error). The body is already capped by limitBody.
func decodeJSON(c *gin.Context, v any) *apiError {
	body, ae := readBody(c)
	if ae != nil {
		return ae
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("malformed JSON body")
	}
	return nil
}

// readBody reads the whole body (capped by limitBody): over the cap is 413.
func readBody(c *gin.Context) ([]byte, *apiError) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, newError(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "request body too large")
		}
		return nil, badRequest("unreadable body")
	}
	return body, nil
}

// pathID parses the {id} path parameter with the rule of ID: one spelling
// per id. A malformed or non-canonical id ("007", "+7") is simply not found.
func pathID(c *gin.Context) (int64, *apiError) {
	v, ok := api.ParseID([]byte(c.Param("id")))
	if !ok {
		return 0, errNotFound
	}
	return int64(v), nil
}
