package revoke_test

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/revoke"
)

// TestConfigYAML loads the `revoke:` section through the real config
// loader: decoding, VIGIL_* overrides and validation with the rest of the file.
func TestConfigYAML(t *testing.T) {
	good := func() revoke.Config {
		return revoke.Config{
			DryRun:       true,
			Policy:       []string{"token_reuse/replay_reported -> alert_only", "token_reuse -> revoke_family", "session_hijack >= critical -> revoke_user"},
			AllowUsers:   []string{"break-glass-admin"},
			AllowTenants: []string{"internal"},
			AllowCIDRs:   []string{"10.0.0.0/8", "2001:db8::/32"},
			Cooldown:     30 * time.Minute, RateLimit: 5.5, RateBurst: 10, MaxActions: 50, CapWindow: 5 * time.Minute, HaltFor: 2 * time.Hour,
			Topic: "auth.vigil-actions", Group: "vigil-revoker-eu", Concurrency: 8, Deadline: time.Hour,
			RetryInitial: 250 * time.Millisecond, RetryMax: 30 * time.Second, BreakerFailures: 3, BreakerOpen: 10 * time.Second,
			Adapter: revoke.AdapterConfig{
				Kind: "http", URL: "https://sessions.internal/api", HMACKeyFile: "testdata/secrets/hmac", Timeout: 2 * time.Second,
				TLS: revoke.TLSConfig{CAFile: "testdata/secrets/ca.pem"},
			},
		}
	}
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		want    *revoke.Config
		wantErr []string
	}{
		{file: "good.yaml", want: new(good())},
		{name: "good.yaml with env overrides", file: "good.yaml",
			env: map[string]string{"VIGIL_REVOKE_DRY_RUN": "false", "VIGIL_REVOKE_POLICY": "* -> alert_only", "VIGIL_REVOKE_ADAPTER_ALLOW_HTTP": "true", "VIGIL_REVOKE_ADAPTER_URL": "http://127.0.0.1:8085"},
			want: func() *revoke.Config {
				c := good()
				c.DryRun, c.Policy, c.Adapter.AllowHTTP, c.Adapter.URL = false, []string{"* -> alert_only"}, true, "http://127.0.0.1:8085"
				return &c
			}()},
		{file: "bad.yaml", wantErr: []string{
			`testdata/bad.yaml:4: revoke.policy[0]: must read "DETECTOR[/KIND] [>= SEVERITY] -> ACTION"`,
			`testdata/bad.yaml:5: revoke.allow_cidrs[0]: must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32, got "10.0.0.0/33"`,
			`testdata/bad.yaml:6: revoke.cooldown: must be between 0s and 168h0m0s, got -1m0s`,
			`testdata/bad.yaml:7: revoke.rate_limit: must be a positive number of revocations per second`,
			`testdata/bad.yaml:8: revoke.max_actions: must be at least 1, got 0`,
			`testdata/bad.yaml:9: revoke.cap_window: must be between 1s and 24h0m0s, got 0s`,
			`testdata/bad.yaml:10: revoke.concurrency: must be between 1 and 4096, got 0`,
			`testdata/bad.yaml:13: revoke.adapter.url: is plain http:// (sessions.internal): revocations and credentials would cross the network in clear; use https:// or set revoke.adapter.allow_http: true`,
		}},
		{file: "misspelled.yaml", wantErr: []string{
			`testdata/misspelled.yaml:3: unknown key "revoke.dryrun" (did you mean "revoke.dry_run"?)`,
			`testdata/misspelled.yaml:4: unknown key "revoke.cool_down" (did you mean "revoke.cooldown"?)`,
			`testdata/misspelled.yaml:6: unknown key "revoke.adapter.knd" (did you mean "revoke.adapter.kind"?)`,
		}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		name := tt.name
		if name == "" {
			name = tt.file
		}
		t.Run(name, func(t *testing.T) {
			var getenv func(string) (string, bool)
			if tt.env != nil {
				getenv = func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			}
			got, err := config.Load(filepath.Join("testdata", tt.file), getenv)
			if tt.want == nil {
				if got != nil {
					t.Errorf("got a config with the error")
				}
				testenv.WantErrorLines(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got.Revoke, *tt.want) {
				t.Errorf("revoke config\n got: %+v\nwant: %+v", got.Revoke, *tt.want)
			}
		})
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no test case", f)
		}
	}
}

// TestAdapterConfigNeeds: each adapter kind names what it is missing.
func TestAdapterConfigNeeds(t *testing.T) {
	f := func(a revoke.AdapterConfig, want ...string) {
		t.Helper()
		c := revoke.DefaultConfig()
		a.Timeout = 5 * time.Second
		c.Adapter = a
		testenv.WantErrorLines(t, c.Validate(), want)
	}
	f(revoke.AdapterConfig{Kind: "http"}, "revoke.adapter.url: must be set when adapter.kind is http")
	f(revoke.AdapterConfig{Kind: "kratos", URL: "ftp://x"}, "revoke.adapter.url: must be an https:// URL")
	f(revoke.AdapterConfig{Kind: "keycloak", URL: "https://kc"}, "revoke.adapter.realm: must be set for keycloak", "revoke.adapter.client_id: keycloak needs client_id and client_secret_file")
	f(revoke.AdapterConfig{Kind: "auth0", URL: "https://t.auth0.com"}, "revoke.adapter.client_id: auth0 needs client_id and client_secret_file")
	f(revoke.AdapterConfig{Kind: "http", URL: "https://user:pw@x"}, "revoke.adapter.url: must not carry credentials")
	f(revoke.AdapterConfig{Kind: "okta"}, `revoke.adapter.kind: must be one of none, http, kratos, keycloak, auth0, got "okta"`)
	f(revoke.AdapterConfig{Kind: "http", URL: "https://x", TLS: revoke.TLSConfig{CertFile: "c.pem"}}, "revoke.adapter.tls.cert_file: cert_file and key_file must be set together")
}

// TestConfigCrossChecks: keys checked against the rest of the file, and
// the adapter's files, name themselves.
func TestConfigCrossChecks(t *testing.T) {
	f := func(doc string, want ...string) {
		t.Helper()
		_, err := config.Parse([]byte(doc), "x.yaml", nil)
		testenv.WantErrorLines(t, err, want)
	}
	f("revoke:\n  topic: session-events\n", `x.yaml:2: revoke.topic: must differ from kafka.topic and kafka.dlq_topic, got "session-events"`)
	f("revoke:\n  group: vigil\n", `x.yaml:2: revoke.group: must differ from kafka.group ("vigil")`)
	f("revoke:\n  halt_for: 1m\n", `x.yaml:2: revoke.halt_for: must be at least cap_window (10m0s)`)
	f("revoke:\n  adapter:\n    kind: http\n    url: https://s\n    token_file: /nonexistent/token\n",
		`x.yaml:5: revoke.adapter.token_file: /nonexistent/token: no such file or directory`)
}
