package revoke

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/tlsclient"
)

// Config is the `revoke:` section of the vigil config file: the policy,
// the guardrails, the outbox and revoker, and the session API adapter.
// docs/revocation.md explains each key and how to graduate from dry-run.
type Config struct {
	// DryRun decides and records every action (status dry_run) but sends nothing.
	DryRun bool `yaml:"dry_run"`
	// Policy maps anomalies to actions, first match wins; see ParseRule for the syntax.
	Policy []string `yaml:"policy"`
	// AllowUsers are user ids vigil never revokes.
	AllowUsers []string `yaml:"allow_users"`
	// AllowTenants are tenants vigil never revokes in.
	AllowTenants []string `yaml:"allow_tenants"`
	// AllowCIDRs are networks whose anomalies vigil never acts on (by the anomaly's ip).
	AllowCIDRs []string `yaml:"allow_cidrs"`
	// Cooldown suppresses a second action on the same subject within this long of the first.
	Cooldown time.Duration `yaml:"cooldown"`
	// RateLimit is the most revocations started per second, across subjects; excess actions wait.
	RateLimit float64 `yaml:"rate_limit"`
	// RateBurst is how many revocations may start at once before RateLimit paces them.
	RateBurst int `yaml:"rate_burst"`
	// MaxActions is the blast-radius cap: past this many revocations in CapWindow, vigil halts.
	MaxActions int `yaml:"max_actions"`
	// CapWindow is the sliding window MaxActions counts over.
	CapWindow time.Duration `yaml:"cap_window"`
	// HaltFor is how long a tripped cap keeps revocation halted (every action suppressed).
	HaltFor time.Duration `yaml:"halt_for"`
	// Topic is the outbox topic action intents are produced to and the revoker consumes.
	Topic string `yaml:"topic"`
	// Group is the revoker's consumer group id.
	Group string `yaml:"group"`
	// Concurrency is how many actions the revoker sends at once.
	Concurrency int `yaml:"concurrency"`
	// Deadline is how long after its intent an action may keep retrying; then it fails and is alerted.
	Deadline time.Duration `yaml:"deadline"`
	// RetryInitial is the first retry's backoff; it doubles (jittered) up to RetryMax.
	RetryInitial time.Duration `yaml:"retry_initial"`
	// RetryMax caps the backoff between retries (a longer Retry-After is honoured).
	RetryMax time.Duration `yaml:"retry_max"`
	// BreakerFailures opens an endpoint's circuit after this many consecutive failed calls.
	BreakerFailures int `yaml:"breaker_failures"`
	// BreakerOpen is how long an open circuit waits before letting one trial call through.
	BreakerOpen time.Duration `yaml:"breaker_open"`
	// Adapter says which session API to call and how.
	Adapter AdapterConfig `yaml:"adapter"`
}

// AdapterConfig is the `revoke.adapter:` section.
type AdapterConfig struct {
	// Kind is none (decide and record only, as in dry-run), http, kratos, keycloak or auth0.
	Kind string `yaml:"kind"`
	// URL is the session API's base URL (http: the base of /revocations; kratos: the admin API;
	// keycloak: the server root; auth0: https://TENANT.auth0.com).
	URL string `yaml:"url"`
	// AllowHTTP permits a plain http:// URL; without it only https:// is accepted.
	AllowHTTP bool `yaml:"allow_http"`
	// TokenFile holds a static bearer token (http, kratos API key, auth0 Management API token).
	TokenFile string `yaml:"token_file"`
	// HMACKeyFile holds the key that signs request bodies (http: X-Vigil-Signature).
	HMACKeyFile string `yaml:"hmac_key_file"`
	// ClientID is the OAuth client of the client-credentials grant (keycloak, auth0).
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds that client's secret.
	ClientSecretFile string `yaml:"client_secret_file"`
	// Realm is the Keycloak realm whose sessions are revoked.
	Realm string `yaml:"realm"`
	// Audience is the Auth0 Management API audience; "" means URL + /api/v2/.
	Audience string `yaml:"audience"`
	// Timeout bounds one HTTP call, including reading the answer.
	Timeout time.Duration `yaml:"timeout"`
	// TLS configures the client's TLS: a custom CA and a client certificate for mTLS.
	TLS TLSConfig `yaml:"tls"`
}

// TLSConfig is the session API client's TLS section (a custom CA, a client
// certificate for mTLS).
type TLSConfig = tlsclient.Config

// Adapter kinds.
const (
	AdapterNone     = "none"
	AdapterHTTP     = "http"
	AdapterKratos   = "kratos"
	AdapterKeycloak = "keycloak"
	AdapterAuth0    = "auth0"
)

// DefaultPolicy is the policy used when the config sets none: token theft
// revokes the family, a high-severity hijack the session, everything else
// only alerts.
var DefaultPolicy = []string{
	"token_reuse -> revoke_family",
	"session_hijack >= high -> revoke_session",
	"use_after_revocation -> alert_only",
	"login_storm -> alert_only",
	"session_churn -> alert_only",
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Policy:          append([]string(nil), DefaultPolicy...),
		AllowUsers:      []string{},
		AllowTenants:    []string{},
		AllowCIDRs:      []string{},
		Cooldown:        10 * time.Minute,
		RateLimit:       50,
		RateBurst:       100,
		MaxActions:      200,
		CapWindow:       10 * time.Minute,
		HaltFor:         time.Hour,
		Topic:           "vigil.actions",
		Group:           "vigil-revoker",
		Concurrency:     32,
		Deadline:        10 * time.Minute,
		RetryInitial:    100 * time.Millisecond,
		RetryMax:        10 * time.Second,
		BreakerFailures: 10,
		BreakerOpen:     2 * time.Second,
		Adapter:         AdapterConfig{Kind: AdapterNone, Timeout: 5 * time.Second},
	}
}

// Validate reports every bad value, each error naming its key under `revoke.`.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("revoke.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for i, r := range c.Policy {
		if _, err := ParseRule(r); err != nil {
			bad(fmt.Sprintf("policy[%d]", i), "%v", err)
		}
	}
	for i, s := range c.AllowCIDRs {
		if _, err := netip.ParsePrefix(s); err != nil {
			bad(fmt.Sprintf("allow_cidrs[%d]", i), "must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32, got %q", s)
		}
	}
	for _, l := range []struct {
		key string
		v   []string
	}{{"allow_users", c.AllowUsers}, {"allow_tenants", c.AllowTenants}} {
		for i, s := range l.v {
			if strings.TrimSpace(s) == "" {
				bad(fmt.Sprintf("%s[%d]", l.key, i), "must not be empty")
			}
		}
	}
	between := func(key string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			bad(key, "must be between %s and %s, got %s", lo, hi, d)
		}
	}
	between("cooldown", c.Cooldown, 0, 7*24*time.Hour)
	if c.RateLimit <= 0 || c.RateLimit > 1e6 {
		bad("rate_limit", "must be a positive number of revocations per second (at most 1e6), got %g", c.RateLimit)
	}
	if c.RateBurst < 1 {
		bad("rate_burst", "must be at least 1, got %d", c.RateBurst)
	}
	if c.MaxActions < 1 {
		bad("max_actions", "must be at least 1, got %d", c.MaxActions)
	}
	between("cap_window", c.CapWindow, time.Second, 24*time.Hour)
	between("halt_for", c.HaltFor, time.Second, 7*24*time.Hour)
	if c.HaltFor < c.CapWindow && c.CapWindow > 0 {
		bad("halt_for", "must be at least cap_window (%s): a shorter halt ends while the window is still full and trips again at once, got %s", c.CapWindow, c.HaltFor)
	}
	for _, t := range []struct{ key, v string }{{"topic", c.Topic}, {"group", c.Group}} {
		if t.v == "" || strings.ContainsAny(t.v, " \t\n/\\") || len(t.v) > 249 {
			bad(t.key, "must be a Kafka name (letters, digits, '.', '_', '-'), got %q", t.v)
		}
	}
	if c.Concurrency < 1 || c.Concurrency > 4096 {
		bad("concurrency", "must be between 1 and 4096, got %d", c.Concurrency)
	}
	between("deadline", c.Deadline, time.Second, 7*24*time.Hour)
	between("retry_initial", c.RetryInitial, time.Millisecond, time.Minute)
	between("retry_max", c.RetryMax, c.RetryInitial, time.Hour)
	if c.BreakerFailures < 1 {
		bad("breaker_failures", "must be at least 1, got %d", c.BreakerFailures)
	}
	between("breaker_open", c.BreakerOpen, 10*time.Millisecond, time.Hour)
	c.Adapter.validate(bad)
	return errors.Join(errs...)
}

func (a AdapterConfig) validate(bad func(key, format string, args ...any)) {
	switch a.Kind {
	case AdapterNone:
		return
	case AdapterHTTP, AdapterKratos, AdapterKeycloak, AdapterAuth0:
	default:
		bad("adapter.kind", "must be one of none, http, kratos, keycloak, auth0, got %q", a.Kind)
		return
	}
	u, err := url.Parse(a.URL)
	switch {
	case a.URL == "":
		bad("adapter.url", "must be set when adapter.kind is %s", a.Kind)
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		bad("adapter.url", "must be an https:// URL, got %q", a.URL)
	case u.Scheme == "http" && !a.AllowHTTP:
		bad("adapter.url", "is plain http:// (%s): revocations and credentials would cross the network in clear; use https:// or set revoke.adapter.allow_http: true", u.Host)
	case u.User != nil:
		bad("adapter.url", "must not carry credentials; use token_file or client_secret_file")
	}
	if a.Timeout < 100*time.Millisecond || a.Timeout > 5*time.Minute {
		bad("adapter.timeout", "must be between 100ms and 5m, got %s", a.Timeout)
	}
	if (a.TLS.CertFile == "") != (a.TLS.KeyFile == "") {
		bad("adapter.tls.cert_file", "cert_file and key_file must be set together")
	}
	switch a.Kind {
	case AdapterKeycloak:
		if a.Realm == "" {
			bad("adapter.realm", "must be set for keycloak")
		}
		if a.ClientID == "" || a.ClientSecretFile == "" {
			bad("adapter.client_id", "keycloak needs client_id and client_secret_file (a confidential client with the realm-management manage-users role)")
		}
	case AdapterAuth0:
		if a.TokenFile == "" && (a.ClientID == "" || a.ClientSecretFile == "") {
			bad("adapter.client_id", "auth0 needs client_id and client_secret_file (a machine-to-machine application), or token_file")
		}
	}
}
