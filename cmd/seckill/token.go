package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/seckill/seckill/gateway"
)

// printToken mints a JWT with the configured secret: for a user (sub = id)
// or an admin (role = admin).
func printToken(w io.Writer, cfg Config, user string, admin bool, ttl time.Duration) error {
	auth := gateway.NewAuth(cfg.Auth.Secret)
	var (
		tok string
		err error
	)
	switch {
	case ttl < 0:
		return errors.New("token: --ttl must not be negative")
	case admin && user != "":
		return errors.New("token: give --user or --admin, not both")
	case admin:
		if ttl == 0 {
			ttl = time.Hour
		}
		tok, err = auth.Mint("admin", gateway.RoleAdmin, ttl)
	case user != "":
		if id, perr := strconv.ParseInt(user, 10, 64); perr != nil || id < 1 {
			return fmt.Errorf("token: --user must be a positive integer, not %q", user)
		}
		if ttl == 0 {
			ttl = 24 * time.Hour
		}
		tok, err = auth.Mint(user, "", ttl)
	default:
		return errors.New("token: give --user ID or --admin")
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, tok)
	return err
}
