package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/seckill/seckill/gateway"
)

const tokenSecret = "token-test-secret-0123456789abcdefghij"

// mintToken runs `seckill token args...` with tokenSecret and returns what
// it printed.
func mintToken(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"token"}, args...), &stdout, &stderr,
		fakeEnv(map[string]string{"SECKILL_AUTH_SECRET": tokenSecret}))
	return strings.TrimSpace(stdout.String()), err
}

func TestTokenUser(t *testing.T) {
	before := time.Now()
	tok, err := mintToken(t, "--user", "42")
	if err != nil {
		t.Fatal(err)
	}
	c, err := gateway.NewAuth(tokenSecret).Verify(tok)
	if err != nil {
		t.Fatalf("gateway refuses the minted token: %v", err)
	}
	if c.Subject != "42" {
		t.Errorf("sub = %q, want 42", c.Subject)
	}
	if c.Role != "" {
		t.Errorf("role = %q, want none for a user", c.Role)
	}
	if c.ExpiresAt == nil {
		t.Fatal("no exp claim")
	}
	if exp := c.ExpiresAt.Sub(before); exp < 24*time.Hour-time.Minute || exp > 24*time.Hour+time.Minute {
		t.Errorf("user token lives %v, want the default 24h", exp)
	}
	if _, err := gateway.NewAuth(strings.Repeat("x", 40)).Verify(tok); err == nil {
		t.Error("token verifies under another secret")
	}
}

func TestTokenAdmin(t *testing.T) {
	tok, err := mintToken(t, "--admin")
	if err != nil {
		t.Fatal(err)
	}
	c, err := gateway.NewAuth(tokenSecret).Verify(tok)
	if err != nil {
		t.Fatalf("gateway refuses the minted token: %v", err)
	}
	if c.Role != gateway.RoleAdmin {
		t.Errorf("role = %q, want %q", c.Role, gateway.RoleAdmin)
	}
	if exp := time.Until(c.ExpiresAt.Time); exp > time.Hour+time.Minute || exp < time.Hour-time.Minute {
		t.Errorf("admin token lives %v, want the default 1h", exp)
	}
}

func TestTokenTTL(t *testing.T) {
	tok, err := mintToken(t, "--user", "7", "--ttl", "90s")
	if err != nil {
		t.Fatal(err)
	}
	c, err := gateway.NewAuth(tokenSecret).Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if exp := time.Until(c.ExpiresAt.Time); exp > 90*time.Second || exp < 60*time.Second {
		t.Errorf("token lives %v, want 90s", exp)
	}
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "--user ID or --admin"},
		{"both flags", []string{"--user", "42", "--admin"}, "not both"},
		{"user not a number", []string{"--user", "alice"}, "positive integer"},
		{"user zero", []string{"--user", "0"}, "positive integer"},
		{"user negative", []string{"--user", "-5"}, "positive integer"},
		{"user too big", []string{"--user", "9223372036854775808"}, "positive integer"},
		{"bad ttl", []string{"--user", "42", "--ttl", "forever"}, "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := mintToken(t, tt.args...)
			if err == nil {
				t.Fatalf("token %v: no error, printed %q", tt.args, out)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to mention %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("printed %q despite the error", out)
			}
		})
	}
}

func TestRunCommandLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &stdout, &stderr, fakeEnv(nil)); err != nil {
		t.Fatalf("help: %v", err)
	}
	if !strings.Contains(stdout.String(), "usage: seckill") {
		t.Errorf("help printed %q", stdout.String())
	}
	if err := run(context.Background(), nil, &stdout, &stderr, fakeEnv(nil)); err == nil {
		t.Error("no command: no error")
	}
	if err := run(context.Background(), []string{"launch"}, &stdout, &stderr, fakeEnv(nil)); err == nil ||
		!strings.Contains(err.Error(), "launch") {
		t.Errorf("unknown command: err = %v", err)
	}
	err := run(context.Background(), []string{"serve", "--role", "cashier"}, &stdout, &stderr, fakeEnv(nil))
	if err == nil || !strings.Contains(err.Error(), "--role") {
		t.Errorf("bad role: err = %v", err)
	}
}
