package alerts_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/alerts"
)

// TestClientAuthAndTLS: the client trusts the configured CA, sends basic
// auth or a bearer token, posts JSON to /api/v2/alerts of every
// Alertmanager, and keeps secrets out of its errors.
func TestClientAuthAndTLS(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]alerts.Alert
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var as []alerts.Alert
		_ = json.NewDecoder(r.Body).Decode(&as)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, as)
		mu.Unlock()
		if r.Header.Get("Authorization") == "Bearer wrong-token-secret" {
			http.Error(w, "bad token wrong-token-secret", http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := write("ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	base := alerts.DefaultConfig()
	base.Alertmanagers = []string{srv.URL}
	base.TLS.CAFile = ca
	al := []alerts.Alert{{Labels: map[string]string{"alertname": "VigilTokenReuse"}, StartsAt: time.Now(), EndsAt: time.Now().Add(time.Minute)}}

	basic := base
	basic.Username, basic.PasswordFile = "vigil", write("pw", "basic-secret\n")
	c, err := alerts.NewClient(basic)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Post(context.Background(), srv.URL, al); err != nil {
		t.Fatalf("basic: %v", err)
	}
	bearer := base
	bearer.TokenFile = write("token", "bearer-secret")
	if c, err = alerts.NewClient(bearer); err != nil {
		t.Fatal(err)
	}
	if err := c.Post(context.Background(), srv.URL+"/", al); err != nil {
		t.Fatalf("bearer: %v", err)
	}
	mu.Lock()
	if len(got) != 2 || got[0].URL.Path != "/api/v2/alerts" || got[0].Method != http.MethodPost || got[0].Header.Get("Content-Type") != "application/json" {
		t.Fatalf("requests %+v", got)
	}
	if u, p, ok := got[0].BasicAuth(); !ok || u != "vigil" || p != "basic-secret" {
		t.Errorf("basic auth %q %q %v", u, p, ok)
	}
	if h := got[1].Header.Get("Authorization"); h != "Bearer bearer-secret" {
		t.Errorf("bearer header %q", h)
	}
	if len(bodies[0]) != 1 || bodies[0][0].Labels["alertname"] != "VigilTokenReuse" {
		t.Errorf("body %+v", bodies[0])
	}
	mu.Unlock()

	wrong := base
	wrong.TokenFile = write("wrong", "wrong-token-secret")
	if c, err = alerts.NewClient(wrong); err != nil {
		t.Fatal(err)
	}
	err = c.Post(context.Background(), srv.URL, al)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || strings.Contains(err.Error(), "wrong-token-secret") {
		t.Errorf("refused post: %v, want HTTP 401 without the token", err)
	}
	untrusted := base
	untrusted.TLS.CAFile = ""
	if c, err = alerts.NewClient(untrusted); err != nil {
		t.Fatal(err)
	}
	if err := c.Post(context.Background(), srv.URL, al); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("post without the CA: %v, want a certificate error", err)
	}
	missing := base
	missing.PasswordFile, missing.Username = filepath.Join(dir, "nope"), "u"
	if _, err := alerts.NewClient(missing); err == nil || !strings.Contains(err.Error(), "alerts.password_file") {
		t.Errorf("missing password file: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(mod func(*alerts.Config), want string) {
		t.Helper()
		c := alerts.DefaultConfig()
		mod(&c)
		err := c.Validate()
		if want == "" {
			if err != nil {
				t.Errorf("Validate: %v", err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
	f(func(c *alerts.Config) {}, "")
	f(func(c *alerts.Config) { c.Alertmanagers = []string{"https://am:9093"} }, "")
	f(func(c *alerts.Config) { c.Alertmanagers = []string{"http://am:9093"} }, "alerts.alertmanagers[0]: is plain http://")
	f(func(c *alerts.Config) { c.Alertmanagers = []string{"am:9093"} }, "alerts.alertmanagers[0]: must be an Alertmanager base URL")
	f(func(c *alerts.Config) { c.Alertmanagers = []string{"https://u:p@am"} }, "must not carry credentials")
	f(func(c *alerts.Config) { c.Username, c.PasswordFile, c.TokenFile = "u", "p", "t" }, "alerts.token_file: set either")
	f(func(c *alerts.Config) { c.Username = "u" }, "alerts.username: username and password_file must be set together")
	f(func(c *alerts.Config) { c.ResendInterval = 10 * time.Minute }, "alerts.resend_interval: must be between 1s and 4m")
	f(func(c *alerts.Config) { c.MinSeverity = "severe" }, "alerts.min_severity")
	f(func(c *alerts.Config) { c.Alertmanagers = []string{"https://am:9093/?x=1"} }, "without query or fragment")
	f(func(c *alerts.Config) { c.Hold = 0 }, "alerts.hold: must be between resend_interval (1m0s) and 24h")
	f(func(c *alerts.Config) { c.Hold, c.ResendInterval = 30*time.Second, 30*time.Second }, "")
	f(func(c *alerts.Config) { c.GrafanaURL = "grafana" }, "alerts.grafana_url: must be an http(s) URL")
}
