package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

// ID is an int64 id that travels in JSON as a decimal string (JavaScript
// cannot hold a snowflake in a number). A bare JSON number is accepted on
// input too. Either way it has one spelling: canonical decimal digits, no
// sign, no leading zero, no spaces or escapes, > 0, within int64.
type ID int64

// errInvalidID is what every non-canonical id decodes to.
var errInvalidID = errors.New("id must be a positive integer in canonical decimal")

// MarshalJSON writes the id as a string.
func (id ID) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(id), 10) + `"`), nil
}

// UnmarshalJSON reads "123" or 123; anything else ("0123", "+1", " 1",
// 1.0, 1e0, null, an id < 1 or beyond int64) is an error.
func (id *ID) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	v, ok := parseCanonicalID(b)
	if !ok {
		return errInvalidID
	}
	*id = ID(v)
	return nil
}

// maxIDDigits is how many digits the largest int64 has.
const maxIDDigits = 19

// parseCanonicalID reads b when it is the one spelling of a positive int64:
// decimal digits without a leading zero, nothing else.
func parseCanonicalID(b []byte) (int64, bool) {
	n := len(b)
	if n == 0 || n > maxIDDigits || b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	if n == maxIDDigits && string(b) > "9223372036854775807" {
		return 0, false // all digits compare bytewise like their values
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// limitBody refuses a body larger than max: at once from Content-Length
// (the body is never read), and while reading for chunked bodies that lie.
func limitBody(max int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > max {
			writeError(c, newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body too large"))
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
			return nil, newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body too large")
		}
		return nil, badRequest("unreadable body")
	}
	return body, nil
}

// pathID parses the {id} path parameter with the rule of ID: one spelling
// per id. A malformed or non-canonical id ("007", "+7") is simply not found.
func pathID(c *gin.Context) (int64, *apiError) {
	v, ok := parseCanonicalID([]byte(c.Param("id")))
	if !ok {
		return 0, errNotFound
	}
	return v, nil
}
