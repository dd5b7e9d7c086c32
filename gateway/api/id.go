package api

import (
	"bytes"
	"errors"
	"strconv"
)

// ID is an int64 id (activity, item, order, user) that travels in JSON as a
// decimal string: JavaScript cannot hold a Snowflake id in a number. A bare
// JSON number is accepted on input too.
type ID int64

// MarshalJSON writes the id as a string.
func (id ID) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(id), 10) + `"`), nil
}

// UnmarshalJSON reads "123" or 123; anything else, or an id < 1, is an error.
func (id *ID) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 {
		return errors.New("id must be a positive integer")
	}
	*id = ID(v)
	return nil
}

// String returns the id in decimal, as it appears in paths
// (/api/v1/orders/{id}).
func (id ID) String() string { return strconv.FormatInt(int64(id), 10) }
