package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The hot path verifies one JWT per request. golang-jwt spends most of its
// time in encoding/json (the header into a map, each date through a nested
// Unmarshal), which under load cost about 14 µs of a buy's ~130 µs. So
// Verify first tries fastVerify, a narrow verifier for exactly the tokens
// Mint issues, and hands every other token to golang-jwt, which stays the
// authority: fastVerify may only accept a token golang-jwt accepts, with the
// same claims (FuzzJWT checks this on every input), and it never rejects
// anything by itself.

// hs256Header is the first segment Mint writes: {"alg":"HS256","typ":"JWT"}.
const hs256Header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// maxFastPayload bounds the claims segment fastVerify decodes on the stack;
// larger ones go to golang-jwt.
const maxFastPayload = 192

var strictB64 = base64.RawURLEncoding.Strict()

// fastHS256 holds the pooled HMAC state of one secret.
type fastHS256 struct {
	macs      sync.Pool
	validator *jwt.Validator
}

func newFastHS256(secret []byte, opts ...jwt.ParserOption) *fastHS256 {
	return &fastHS256{
		macs:      sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }},
		validator: jwt.NewValidator(opts...),
	}
}

// verify returns the token's claims and true when the token is in the
// narrow form it handles and valid; false means "ask golang-jwt", not
// "invalid". The form: the canonical header segment, a claims segment of
// at most maxFastPayload bytes holding a compact JSON object whose keys
// are among sub, role (strings without escapes), exp, nbf, iat (integers
// without sign, fraction or exponent), each at most once, and a 43-byte
// signature segment. Validation of exp and nbf is golang-jwt's own
// Validator with the parser's options.
func (f *fastHS256) verify(token string) (*Claims, bool) {
	const prefix = hs256Header + "."
	if len(token) <= len(prefix) || token[:len(prefix)] != prefix || !jwtAlphabet(token) {
		return nil, false
	}
	rest := token[len(prefix):]
	dot := -1
	for i := 0; i < len(rest); i++ {
		if rest[i] == '.' {
			if dot >= 0 {
				return nil, false
			}
			dot = i
		}
	}
	if dot < 0 {
		return nil, false
	}
	payload, sig := rest[:dot], rest[dot+1:]
	if len(sig) != 43 || strictB64.DecodedLen(len(payload)) > maxFastPayload {
		return nil, false
	}
	var got [32]byte
	if n, err := strictB64.Decode(got[:], []byte(sig)); err != nil || n != 32 {
		return nil, false
	}
	mac := f.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write([]byte(token[:len(prefix)+dot]))
	var want [32]byte
	mac.Sum(want[:0])
	f.macs.Put(mac)
	if !hmac.Equal(got[:], want[:]) {
		return nil, false
	}
	var buf [maxFastPayload]byte
	n, err := strictB64.Decode(buf[:], []byte(payload))
	if err != nil {
		return nil, false
	}
	c, ok := parseFastClaims(buf[:n])
	if !ok || f.validator.Validate(c) != nil {
		return nil, false
	}
	return c, true
}

// parseFastClaims reads the compact claims object fastVerify handles (see
// verify); anything else returns false.
func parseFastClaims(b []byte) (*Claims, bool) {
	c := &Claims{}
	var seen [5]bool // sub, role, exp, nbf, iat
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, false
	}
	i, end := 1, len(b)-1
	if i == end {
		return nil, false
	}
	for {
		key, next, ok := fastString(b, i, end)
		if !ok || next >= end || b[next] != ':' {
			return nil, false
		}
		i = next + 1
		var slot int
		switch key {
		case "sub", "role":
			s, next, ok := fastString(b, i, end)
			if !ok {
				return nil, false
			}
			if key == "sub" {
				slot, c.Subject = 0, s
			} else {
				slot, c.Role = 1, s
			}
			i = next
		case "exp", "nbf", "iat":
			v, next, ok := fastUint(b, i, end)
			if !ok {
				return nil, false
			}
			d := jwt.NewNumericDate(time.Unix(v, 0))
			switch key {
			case "exp":
				slot, c.ExpiresAt = 2, d
			case "nbf":
				slot, c.NotBefore = 3, d
			default:
				slot, c.IssuedAt = 4, d
			}
			i = next
		default:
			return nil, false
		}
		if seen[slot] {
			return nil, false
		}
		seen[slot] = true
		if i == end {
			return c, true
		}
		if b[i] != ',' {
			return nil, false
		}
		i++
	}
}

// fastString reads a JSON string of printable ASCII without escapes that
// starts at b[i] and returns its contents and the index after it.
func fastString(b []byte, i, end int) (string, int, bool) {
	if i >= end || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < end; j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", 0, false
		}
	}
	return "", 0, false
}

// fastUint reads 1 to 15 decimal digits without a leading zero (or a lone
// 0) at b[i], few enough that golang-jwt's float64 path reads the same
// value, and returns the value and the index after them. A 16th digit, a
// fraction or an exponent is then not a ',' or '}' and fails the caller.
func fastUint(b []byte, i, end int) (int64, int, bool) {
	j := i
	var v int64
	for j < end && j-i < 15 && b[j] >= '0' && b[j] <= '9' {
		v = v*10 + int64(b[j]-'0')
		j++
	}
	if j == i || (b[i] == '0' && j-i > 1) {
		return 0, 0, false
	}
	return v, j, true
}
