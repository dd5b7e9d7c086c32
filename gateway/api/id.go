package api

import (
	"errors"
	"strconv"
)

// ID is an int64 id (activity, item, order, user) that travels in JSON as a
// decimal string: JavaScript cannot hold a Snowflake id in a number. It has
// one spelling: canonical decimal digits in double quotes, no sign, no
// leading zero, no spaces or escapes, > 0, within int64. A bare JSON number
// is refused like any other spelling.
type ID int64

// errInvalidID is what every non-canonical id decodes to.
var errInvalidID = errors.New("id must be a string of a positive integer in canonical decimal")

// MarshalJSON writes the id as a string.
func (id ID) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(id), 10) + `"`), nil
}

// UnmarshalJSON reads "123"; anything else (123, "0123", "+1", " 1",
// 1.0, null, an id < 1 or beyond int64) is an error.
func (id *ID) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return errInvalidID
	}
	v, ok := ParseID(b[1 : len(b)-1])
	if !ok {
		return errInvalidID
	}
	*id = v
	return nil
}

// String returns the id in decimal, as it appears in paths
// (/api/v1/orders/{id}).
func (id ID) String() string { return strconv.FormatInt(int64(id), 10) }

// maxIDDigits is how many digits the largest int64 has.
const maxIDDigits = 19

// ParseID reads b when it is the one spelling of an id (see ID); ok is
// false for anything else. Path parameters and JSON share it.
func ParseID(b []byte) (id ID, ok bool) {
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
	return ID(v), true
}
