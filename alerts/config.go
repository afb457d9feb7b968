package alerts

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/internal/tlsclient"
)

// Config is the `alerts:` section of the vigil config file: where
// anomalies are sent as alerts and how they look. docs/alerts.md explains
// each key.
type Config struct {
	// Alertmanagers are the base URLs of the Alertmanagers to post to (all
	// of them: an HA cluster deduplicates); none turns alerting off.
	Alertmanagers []string `yaml:"alertmanagers"`
	// AllowHTTP permits plain http:// Alertmanager URLs.
	AllowHTTP bool `yaml:"allow_http"`
	// Username and PasswordFile set basic auth; TokenFile a bearer token instead.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	TokenFile    string `yaml:"token_file"`
	// TLS configures the client's TLS (custom CA, client certificate).
	TLS tlsclient.Config `yaml:"tls"`
	// Timeout bounds one POST.
	Timeout time.Duration `yaml:"timeout"`
	// ResendInterval is how often active alerts are sent again; keep it
	// well under Alertmanager's resolve_timeout (5m by default).
	ResendInterval time.Duration `yaml:"resend_interval"`
	// Hold is how long after an anomaly's window closes (or its detection,
	// if later) its alert stays active; its endsAt is that time plus Hold.
	// At least ResendInterval.
	Hold time.Duration `yaml:"hold"`
	// MinSeverity is the lowest anomaly severity that becomes an alert.
	MinSeverity string `yaml:"min_severity"`
	// Shadow also alerts on anomalies of detectors in shadow mode.
	Shadow bool `yaml:"shadow"`
	// SubjectLabels adds user_id, session_id and family_id as labels
	// (normally only in the description): every subject then groups apart.
	SubjectLabels bool `yaml:"subject_labels"`
	// RunbookURL is the base of each alert's runbook_url (+ "/" + alertname + ".md").
	RunbookURL string `yaml:"runbook_url"`
	// GrafanaURL is the base of each alert's dashboard_url; "" leaves it out.
	GrafanaURL string `yaml:"grafana_url"`
}

// DefaultConfig returns the documented defaults: alerting off until an
// Alertmanager is named.
func DefaultConfig() Config {
	return Config{
		Alertmanagers:  []string{},
		Timeout:        10 * time.Second,
		ResendInterval: time.Minute,
		Hold:           10 * time.Minute,
		MinSeverity:    "medium",
		RunbookURL:     DefaultRunbookURL,
	}
}

// DefaultRunbookURL is where the runbooks of alerts/runbooks are published.
const DefaultRunbookURL = "https://github.com/vigilhq/vigil/blob/main/alerts/runbooks"

// Enabled reports whether any Alertmanager is configured.
func (c Config) Enabled() bool { return len(c.Alertmanagers) > 0 }

// Validate reports every bad value, each error naming its key under `alerts.`.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("alerts.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for i, a := range c.Alertmanagers {
		u, err := url.Parse(a)
		key := fmt.Sprintf("alertmanagers[%d]", i)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			bad(key, "must be an Alertmanager base URL such as https://alertmanager:9093, got %q", a)
		case u.Scheme == "http" && !c.AllowHTTP:
			bad(key, "is plain http:// (%s); use https:// or set alerts.allow_http: true", u.Host)
		case u.User != nil:
			bad(key, "must not carry credentials; use username/password_file or token_file")
		case u.RawQuery != "" || u.Fragment != "":
			bad(key, "must be a base URL without query or fragment (vigil appends /api/v2/alerts), got %q", a)
		}
	}
	if c.Username != "" && c.TokenFile != "" {
		bad("token_file", "set either username/password_file (basic auth) or token_file (bearer), not both")
	}
	if (c.Username == "") != (c.PasswordFile == "") {
		bad("username", "username and password_file must be set together")
	}
	if c.Timeout < 100*time.Millisecond || c.Timeout > time.Minute {
		bad("timeout", "must be between 100ms and 1m, got %s", c.Timeout)
	}
	if c.ResendInterval < time.Second || c.ResendInterval > 4*time.Minute {
		bad("resend_interval", "must be between 1s and 4m (under Alertmanager's resolve_timeout of 5m), got %s", c.ResendInterval)
	}
	if c.Hold < max(c.ResendInterval, time.Second) || c.Hold > 24*time.Hour {
		bad("hold", "must be between resend_interval (%s) and 24h, so every alert lives long enough to be posted; got %s", c.ResendInterval, c.Hold)
	}
	if _, ok := severityByName(c.MinSeverity); !ok {
		bad("min_severity", "must be info, low, medium, high or critical, got %q", c.MinSeverity)
	}
	for _, u := range []struct{ key, v string }{{"runbook_url", c.RunbookURL}, {"grafana_url", c.GrafanaURL}} {
		if u.v == "" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || p.Host == "" || !strings.HasPrefix(p.Scheme, "http") {
			bad(u.key, "must be an http(s) URL, got %q", u.v)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.cert_file", "cert_file and key_file must be set together")
	}
	return errors.Join(errs...)
}

func severityByName(s string) (detect.Severity, bool) {
	for sev := detect.SeverityInfo; sev <= detect.SeverityCritical; sev++ {
		if sev.String() == s {
			return sev, true
		}
	}
	return 0, false
}
