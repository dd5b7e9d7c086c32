package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/loadtest/cluster"
)

// secret is one secret setting and a distinctive value for it.
type secret struct{ name, value string }

// leaks returns the secrets that appear in text: the whole value, or any 8
// characters in a row of its random part (a truncated echo is a leak too).
func leaks(text string, secrets []secret) []string {
	var found []string
	for _, s := range secrets {
		random := s.value[strings.LastIndexByte(s.value, '-')+1:]
		for i := 0; i+8 <= len(random); i++ {
			if strings.Contains(text, random[i:i+8]) {
				found = append(found, fmt.Sprintf("%s (%q)", s.name, random[i:i+8]))
				break
			}
		}
	}
	return found
}

// startPasswordRedis runs a redis-server of the test's own that requires
// password, and returns its address.
func startPasswordRedis(t *testing.T, password string) string {
	t.Helper()
	return cluster.NewRedisWith(t, cluster.RedisOptions{Password: password}).Addr
}

// withPassword returns the DSN with password set for its user.
func withPassword(t *testing.T, dsn, password string) string {
	t.Helper()
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " password=" + password
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// call sends one request and returns the status and body; it never fails
// the test on a transport error (status 0).
func call(method, url, token, body string, header ...string) (int, string) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func TestSecretsNeverLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary against PostgreSQL and Redis")
	}
	t.Parallel()
	secrets := []secret{
		{"auth.secret", "jwt-" + randomHex(20)},
		{"payment.secret", "pay-" + randomHex(20)},
		{"postgres password", "pgpw-" + randomHex(10)},
		{"redis.password", "rdpw-" + randomHex(10)},
	}
	authSecret, paySecret, pgPass, redisPass := secrets[0].value, secrets[1].value, secrets[2].value, secrets[3].value
	redisAddr := startPasswordRedis(t, redisPass)
	dsn := withPassword(t, newDatabase(t), pgPass)
	port := freePort(t)
	env := map[string]string{
		"SECKILL_AUTH_SECRET":      authSecret,
		"SECKILL_PAYMENT_SECRET":   paySecret,
		"SECKILL_POSTGRES_DSN":     dsn,
		"SECKILL_REDIS_ADDR":       redisAddr,
		"SECKILL_REDIS_PASSWORD":   redisPass,
		"SECKILL_LOG_LEVEL":        "debug", // the chattiest the binary gets
		"SECKILL_LOG_FORMAT":       "json",
		"SECKILL_HTTP_ADDR":        fmt.Sprintf("127.0.0.1:%d", port),
		"SECKILL_NATS_URL":         "",
		"SECKILL_NATS_LISTEN":      "",
		"SECKILL_NATS_DATA_DIR":    t.TempDir(),
		"SECKILL_SENTINEL_LOG_DIR": t.TempDir(),
	}
	// The Redis password and the DSN come from the config file, the JWT and
	// payment secrets from the environment: both ways in are covered.
	fileEnv := map[string]string{}
	for k, v := range env {
		fileEnv[k] = v
	}
	delete(fileEnv, "SECKILL_REDIS_PASSWORD")
	delete(fileEnv, "SECKILL_POSTGRES_DSN")
	config := filepath.Join(t.TempDir(), "seckill.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf("redis:\n  password: %q\npostgres:\n  dsn: %q\n",
		redisPass, dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "seckill", port, fileEnv, "--role=all", "--config", config)
	p.waitReady(30 * time.Second)

	auth := gateway.NewAuth(authSecret)
	admin, _ := auth.Mint("admin", gateway.RoleAdmin, time.Hour)
	user, _ := auth.Mint("42", "", time.Hour)
	forged, _ := gateway.NewAuth(authSecret+"x").Mint("42", gateway.RoleAdmin, time.Hour)
	sign := func(body string) string { return gateway.NewSigner(paySecret).Sign([]byte(body)) }
	var answers []string
	do := func(what string, wantStatus int, method, path, token, body string, header ...string) string {
		t.Helper()
		status, got := call(method, p.url+path, token, body, header...)
		if status != wantStatus {
			t.Errorf("%s: %d %s, want %d", what, status, got, wantStatus)
		}
		answers = append(answers, what+": "+got)
		return got
	}

	// A sale, start to finish, and everything around it that can go wrong.
	now := time.Now().UTC()
	created := do("create", 201, "POST", "/admin/v1/activities", admin, fmt.Sprintf(
		`{"name":"s","start_at":%q,"end_at":%q,"pay_timeout_seconds":60,"per_user_limit":1,`+
			`"items":[{"name":"a","price_cents":100,"stock":5}]}`,
		now.Add(-time.Minute).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)))
	ids := regexp.MustCompile(`"id":"(\d+)"`).FindAllStringSubmatch(created, -1)
	if len(ids) != 2 {
		t.Fatalf("create: %s", created)
	}
	aid, iid := ids[0][1], ids[1][1]
	do("publish", 200, "POST", "/admin/v1/activities/"+aid+"/publish", admin, "")
	buy := fmt.Sprintf(`{"activity_id":%q,"item_id":%q,"quantity":1}`, aid, iid)
	bought := do("buy", 202, "POST", "/api/v1/seckill", user, buy, "Idempotency-Key", "k-1")
	oid := regexp.MustCompile(`"order_id":"(\d+)"`).FindStringSubmatch(bought)
	if oid == nil {
		t.Fatalf("buy: %s", bought)
	}
	do("read order", 200, "GET", "/api/v1/orders/"+oid[1], user, "")
	do("public view", 200, "GET", "/api/v1/activities/"+aid, "", "")
	do("stats", 200, "GET", "/admin/v1/activities/"+aid+"/stats", admin, "")
	do("no token", 401, "POST", "/api/v1/seckill", "", buy)
	do("forged token", 401, "POST", "/admin/v1/activities/"+aid+"/publish", forged, "")
	do("user on admin", 403, "GET", "/admin/v1/activities/"+aid+"/stats", user, "")
	do("malformed JSON", 400, "POST", "/api/v1/seckill", user, `{"activity_id":`)
	do("too large", 413, "POST", "/api/v1/seckill", user, `{"pad":"`+strings.Repeat("x", 5000)+`"}`)
	do("unknown item", 404, "POST", "/api/v1/seckill", user, fmt.Sprintf(`{"activity_id":%q,"item_id":"999","quantity":1}`, aid))
	do("unknown route", 404, "GET", "/nope", "", "")
	pay := func(amount int) string {
		return fmt.Sprintf(`{"order_id":%q,"trade_no":"T-1","amount_cents":%d}`, oid[1], amount)
	}
	do("unsigned callback", 401, "POST", "/api/v1/payments/callback", "", pay(100))
	do("callback signed with the JWT secret", 401, "POST", "/api/v1/payments/callback", "", pay(100),
		"X-Signature", gateway.NewSigner(authSecret).Sign([]byte(pay(100))))
	do("callback with a bad signature", 401, "POST", "/api/v1/payments/callback", "", pay(100),
		"X-Signature", sign(pay(100))[:63]+"x")
	do("callback for an unknown order", 404, "POST", "/api/v1/payments/callback", "",
		`{"order_id":"77","trade_no":"T-2","amount_cents":1}`, "X-Signature", sign(`{"order_id":"77","trade_no":"T-2","amount_cents":1}`))
	// The order may still be on its way to PostgreSQL (503, retry) or paid.
	cluster.Eventually(t, 10*time.Second, func() error {
		status, got := call("POST", p.url+"/api/v1/payments/callback", "", pay(100), "X-Signature", sign(pay(100)))
		answers = append(answers, "callback: "+got)
		if status == 200 {
			return nil
		}
		if status != 503 {
			t.Fatalf("callback: %d %s", status, got)
		}
		return fmt.Errorf("callback: %d %s", status, got)
	})
	do("callback with the wrong amount", 400, "POST", "/api/v1/payments/callback", "", pay(1), "X-Signature", sign(pay(1)))
	do("readyz", 200, "GET", "/readyz", "", "")
	do("metrics", 200, "GET", "/metrics", "", "")

	p.terminate()
	if code, err := p.waitExit(20 * time.Second); err != nil || code != 0 {
		t.Fatalf("exit after SIGTERM: %d %v", code, err)
	}
	if len(p.records("starting seckill")) != 1 || len(p.records("stopped")) != 1 {
		t.Fatalf("the log lacks its start or stop record; is it captured?\n%s", p.log())
	}
	if l := leaks(p.log(), secrets); len(l) > 0 {
		t.Errorf("the log of a whole run contains %v", l)
	}
	if l := leaks(strings.Join(answers, "\n"), secrets); len(l) > 0 {
		t.Errorf("the HTTP answers contain %v", l)
	}

	// Starts that fail on a secret setting name the setting, never its value.
	bin := seckillBinary(t)
	natsSecret := secret{"nats.url password", "ntpw-" + randomHex(10)}
	short := []secret{{"short auth.secret", "jwt-" + randomHex(6)}, {"short payment.secret", "pay-" + randomHex(6)}}
	badDSN := secret{"postgres password", "pgpw-" + randomHex(10)}
	wrongRedis := secret{"redis.password", "rdpw-" + randomHex(10)}
	cfgFile := filepath.Join(t.TempDir(), "seckill.yaml")
	yamlSecret := secret{"auth.secret in the file", "jwt-" + randomHex(20)}
	if err := os.WriteFile(cfgFile, []byte("auth:\n  secret: \""+yamlSecret.value+"\"\n  secret_file: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		args    []string
		env     map[string]string
		secrets []secret
		want    string // in the output: the setting or cause named
	}{
		{"secrets too short", []string{"serve"}, map[string]string{
			"SECKILL_AUTH_SECRET": short[0].value, "SECKILL_PAYMENT_SECRET": short[1].value}, short, "auth.secret"},
		{"token with a short secret", []string{"token", "--admin"}, map[string]string{
			"SECKILL_AUTH_SECRET": short[0].value}, short[:1], "auth.secret"},
		{"malformed DSN with a password", []string{"serve"}, map[string]string{
			"SECKILL_POSTGRES_DSN": "postgres://postgres:" + badDSN.value + "@127.0.0.1:notaport/x"},
			[]secret{badDSN}, "postgres.dsn is not a valid"},
		{"PostgreSQL unreachable, DSN with a password", []string{"serve"}, map[string]string{
			"SECKILL_POSTGRES_DSN": fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2",
				badDSN.value, freePort(t))}, []secret{badDSN}, "postgres: ping"},
		{"wrong Redis password", []string{"serve"}, map[string]string{
			"SECKILL_REDIS_PASSWORD": wrongRedis.value}, []secret{wrongRedis, secrets[3]}, "WRONGPASS"},
		{"NATS URL with credentials unreachable", []string{"serve"}, map[string]string{
			"SECKILL_NATS_URL": fmt.Sprintf("nats://seckill:%s@127.0.0.1:%d", natsSecret.value, freePort(t))},
			[]secret{natsSecret}, "connect nats"},
		{"unknown key next to a secret in the file", []string{"serve", "--config", cfgFile}, nil,
			[]secret{yamlSecret}, "secret_file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range env {
				vars[k] = v
			}
			for k, v := range c.env {
				vars[k] = v
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, c.args...)
			cmd.Dir = t.TempDir()
			cmd.Env = childEnv(vars)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("want a failed start, got %v (ctx %v):\n%s", err, ctx.Err(), out.String())
			}
			t.Logf("%s", bytes.TrimSpace(out.Bytes()))
			if !strings.Contains(out.String(), c.want) {
				t.Errorf("the output does not name %q:\n%s", c.want, out.String())
			}
			all := append(append([]secret{}, c.secrets...), secrets...)
			if l := leaks(out.String(), all); len(l) > 0 {
				t.Errorf("the output contains %v:\n%s", l, out.String())
			}
		})
	}
}

// The YAML decoder quotes the offending value in a type error (up to 10
// characters, else the first 7), so a secret written where the file expects
// a section or a number is echoed: `redis: "hunter2"` prints hunter2.
func TestConfigTypeErrorsDoNotQuoteValues(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, yaml, value string }{
		{"Redis password as the section", "redis: \"hunter2\"\n", "hunter2"},
		{"JWT secret as the section", "auth: \"jwt-0123456789abcdef0123456789abcdef\"\n", "jwt-012"},
		{"DSN as the section", "postgres: \"postgres://u:pw@h/db\"\n", "postgre"},
		{"password in a number", "redis:\n  db: \"hunter2\"\n", "hunter2"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".yaml")
		if err := os.WriteFile(path, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadConfig(path, fakeEnv(nil))
		if err == nil {
			t.Errorf("%s: loaded", c.name)
			continue
		}
		if strings.Contains(err.Error(), c.value) {
			t.Errorf("%s: error %q quotes the value", c.name, err)
		}
	}
}
