package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/seckill/seckill/gateway/api"
)

// RoleAdmin is the JWT role claim of administrators.
const RoleAdmin = "admin"

// Claims are seckill's JWT claims: sub is the user id as a decimal string,
// exp is required, role is "admin" for administrators.
type Claims struct {
	Role string `json:"role,omitempty"`
	jwt.RegisteredClaims
}

// Auth signs and verifies HS256 tokens with one secret.
type Auth struct {
	secret []byte
	parser *jwt.Parser
	fast   *fastHS256
}

// NewAuth returns an Auth for the secret. Only HS256 is accepted, and a
// token without exp is refused, whatever its header says. Segments must be
// canonical base64url (strict decoding: no stray bits in the last character),
// so a signed token has exactly one spelling.
func NewAuth(secret string) *Auth {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5 * time.Second),
		jwt.WithStrictDecoding(),
	}
	a := &Auth{secret: []byte(secret), parser: jwt.NewParser(opts...)}
	if !ablated["jwtfast"] {
		a.fast = newFastHS256([]byte(secret), opts...)
	}
	return a
}

// Mint returns a signed token for a user (role "") or an admin.
func (a *Auth) Mint(subject, role string, ttl time.Duration) (string, error) {
	now := time.Now()
	c := Claims{Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   subject,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
}

var errBadToken = errors.New("gateway: invalid token")

// Verify checks a token and returns its claims. Tokens in the form Mint
// writes take the fast path (jwtfast.go); all others, and every token the
// fast path does not accept, are decided by golang-jwt.
func (a *Auth) Verify(token string) (*Claims, error) {
	if a.fast != nil {
		if c, ok := a.fast.verify(token); ok {
			return c, nil
		}
	}
	return a.verifySlow(token)
}

// verifySlow is golang-jwt's verdict on a token.
func (a *Auth) verifySlow(token string) (*Claims, error) {
	if !jwtAlphabet(token) {
		return nil, fmt.Errorf("%w: not a compact JWS", errBadToken)
	}
	var c Claims
	_, err := a.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.secret, nil })
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadToken, err)
	}
	return &c, nil
}

// jwtAlphabet reports whether s holds only base64url characters and dots.
// The base64 decoder skips '\r' and '\n', so without this check one
// signature could be spelled many ways.
func jwtAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

const ctxUser = "seckill.user"

// principal is the authenticated caller.
type principal struct {
	UserID int64
	Admin  bool
}

// requireUser authenticates any valid token whose sub is a positive user id.
func (a *Auth) requireUser() gin.HandlerFunc { return a.middleware(false) }

// requireAdmin authenticates a valid token with role admin; a valid user
// token gets 403.
func (a *Auth) requireAdmin() gin.HandlerFunc { return a.middleware(true) }

func (a *Auth) middleware(admin bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		raw, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || raw == "" {
			writeError(c, newError(http.StatusUnauthorized, api.CodeUnauthorized, "missing bearer token"))
			return
		}
		claims, err := a.Verify(raw)
		if err != nil {
			writeError(c, newError(http.StatusUnauthorized, api.CodeUnauthorized, "invalid or expired token"))
			return
		}
		p := principal{Admin: claims.Role == RoleAdmin}
		if admin {
			if !p.Admin {
				writeError(c, newError(http.StatusForbidden, api.CodeForbidden, "admin role required"))
				return
			}
		} else {
			uid, err := strconv.ParseInt(claims.Subject, 10, 64)
			if err != nil || uid <= 0 {
				writeError(c, newError(http.StatusUnauthorized, api.CodeUnauthorized, "token subject is not a user id"))
				return
			}
			p.UserID = uid
		}
		c.Set(ctxUser, p)
		c.Next()
	}
}

func caller(c *gin.Context) principal {
	p, _ := c.Get(ctxUser)
	return p.(principal)
}
