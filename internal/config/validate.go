package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/slo"
)

var (
	kafkaTopicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	databaseRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// fieldError is one validation problem: the key it is about and, for
// positioning, other keys it involves (tried when key was not set).
type fieldError struct {
	key  string
	msg  string
	also []string
}

type validator struct {
	errs []fieldError
}

func (v *validator) bad(key, format string, args ...any) {
	v.errs = append(v.errs, fieldError{key: key, msg: fmt.Sprintf(format, args...)})
}

func (v *validator) badAlso(key string, also []string, format string, args ...any) {
	v.errs = append(v.errs, fieldError{key: key, msg: fmt.Sprintf(format, args...), also: also})
}

// Validate reports every invalid value as errors.Join of one error per
// problem, each naming the full dotted key and, when the value came from the
// config file or the environment, its file:line or variable.
func (c *Config) Validate() error {
	var v validator
	v.kafka(&c.Kafka)
	if t := c.Revoke.Topic; t != "" && (t == c.Kafka.Topic || t == c.Kafka.DLQTopic) {
		v.badAlso("revoke.topic", []string{"kafka.topic"}, "must differ from kafka.topic and kafka.dlq_topic, got %q", t)
	}
	if g := c.Revoke.Group; g != "" && g == c.Kafka.Group {
		v.badAlso("revoke.group", []string{"kafka.group"}, "must differ from kafka.group (%q): the revoker is its own consumer group", g)
	}
	for _, f := range []struct{ key, path string }{
		{"alerts.password_file", c.Alerts.PasswordFile}, {"alerts.token_file", c.Alerts.TokenFile},
		{"alerts.tls.ca_file", c.Alerts.TLS.CAFile}, {"alerts.tls.cert_file", c.Alerts.TLS.CertFile}, {"alerts.tls.key_file", c.Alerts.TLS.KeyFile},
	} {
		if f.path != "" {
			v.file(f.key, f.path)
		}
	}
	// Secret and TLS files of the session API adapter must exist (their content is read at start).
	for _, f := range []struct{ key, path string }{
		{"revoke.adapter.token_file", c.Revoke.Adapter.TokenFile}, {"revoke.adapter.hmac_key_file", c.Revoke.Adapter.HMACKeyFile},
		{"revoke.adapter.client_secret_file", c.Revoke.Adapter.ClientSecretFile}, {"revoke.adapter.tls.ca_file", c.Revoke.Adapter.TLS.CAFile},
		{"revoke.adapter.tls.cert_file", c.Revoke.Adapter.TLS.CertFile}, {"revoke.adapter.tls.key_file", c.Revoke.Adapter.TLS.KeyFile},
	} {
		if f.path != "" && c.Revoke.Adapter.Kind != "none" {
			v.file(f.key, f.path)
		}
	}
	v.clickhouse(&c.ClickHouse)
	if c.Privacy.KeyFile != "" {
		if _, err := c.Privacy.Key(); err != nil {
			v.bad("privacy.key_file", "%v", strings.TrimPrefix(err.Error(), "privacy.key_file: "))
		}
	}
	if c.Admin.TokenFile != "" {
		v.file("admin.token_file", c.Admin.TokenFile)
	}
	if c.Admin.Listen != "" {
		if err := checkHostPort(c.Admin.Listen, true, true); err != nil {
			v.bad("admin.listen", "%v (or \"\" to disable the admin listener)", err)
		}
	}
	if e := c.Tracing.OTLPEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.bad("tracing.otlp_endpoint", "must be an http:// or https:// URL of an OTLP/HTTP collector (or \"\" to disable tracing), got %q", e)
		}
	}
	if r := c.Tracing.SampleRatio; r < 0 || r > 1 {
		v.bad("tracing.sample_ratio", "must be between 0 and 1, got %g", r)
	}
	if c.Tracing.ServiceName == "" {
		v.bad("tracing.service_name", "must not be empty")
	}
	if c.SLO.SpecFile != "" {
		if _, err := slo.Load(c.SLO.SpecFile); err != nil {
			v.bad("slo.spec_file", "%v", err)
		}
	}
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	// Heartbeats stop while a generation drains (kafka-go ties them to the
	// generation), so a drain longer than the session timeout gets the member
	// evicted and starts another rebalance.
	if c.Ingest.DrainTimeout >= c.Kafka.SessionTimeout && c.Kafka.SessionTimeout > 0 {
		v.badAlso("ingest.drain_timeout", []string{"kafka.session_timeout"}, "must be shorter than kafka.session_timeout (%s), got %s", c.Kafka.SessionTimeout, c.Ingest.DrainTimeout)
	}
	// Each section's Validate prefixes its errors with their dotted keys.
	for _, sec := range []struct {
		name string
		err  error
	}{{"ingest", c.Ingest.Validate()}, {"detect", c.Detect.Validate()}, {"revoke", c.Revoke.Validate()}, {"alerts", c.Alerts.Validate()}} {
		for _, err := range unjoin(sec.err) {
			key, msg, ok := strings.Cut(err.Error(), ": ")
			if !ok || strings.ContainsAny(key, " \n") {
				key, msg = sec.name, err.Error()
			}
			v.bad(key, "%s", msg)
		}
	}

	// File positions first, in line order, then environment variables, then
	// keys left at their defaults; each group keeps the order of the checks.
	type located struct {
		rank, line int
		err        error
	}
	var out []located
	for _, e := range v.errs {
		where, ok := c.src.locate(e.key)
		for _, k := range e.also {
			if ok {
				break
			}
			where, ok = c.src.locate(k)
		}
		switch {
		case !ok:
			out = append(out, located{2, 0, fmt.Errorf("%s: %s", e.key, e.msg)})
		case where.env != "":
			out = append(out, located{1, 0, fmt.Errorf("%s: %s: %s", c.src.format(where), e.key, e.msg)})
		default:
			out = append(out, located{0, where.line, fmt.Errorf("%s: %s: %s", c.src.format(where), e.key, e.msg)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].rank != out[j].rank {
			return out[i].rank < out[j].rank
		}
		return out[i].line < out[j].line
	})
	errs := make([]error, len(out))
	for i, o := range out {
		errs[i] = o.err
	}
	return errors.Join(errs...)
}

// unjoin splits an errors.Join result into its parts.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

func (v *validator) kafka(k *Kafka) {
	if len(k.Brokers) == 0 {
		v.bad("kafka.brokers", "must list at least one broker (host:port)")
	}
	for i, b := range k.Brokers {
		if err := checkHostPort(b, false, false); err != nil {
			v.bad(fmt.Sprintf("kafka.brokers[%d]", i), "%v", err)
		}
	}
	v.topic("kafka.topic", k.Topic)
	v.topic("kafka.group", k.Group)
	v.topic("kafka.dlq_topic", k.DLQTopic)
	if k.DLQTopic != "" && k.DLQTopic == k.Topic {
		v.badAlso("kafka.dlq_topic", []string{"kafka.topic"}, "must differ from kafka.topic (%q): invalid messages would be consumed again", k.Topic)
	}
	if k.ClientID == "" {
		v.bad("kafka.client_id", "must not be empty")
	}
	v.positive("kafka.session_timeout", k.SessionTimeout)
	v.positive("kafka.rebalance_timeout", k.RebalanceTimeout)
	v.positive("kafka.heartbeat_interval", k.HeartbeatInterval)
	if k.HeartbeatInterval > 0 && k.SessionTimeout > 0 && k.HeartbeatInterval >= k.SessionTimeout {
		v.badAlso("kafka.heartbeat_interval", []string{"kafka.session_timeout"},
			"must be less than kafka.session_timeout (%s), got %s", fmtDuration(k.SessionTimeout), fmtDuration(k.HeartbeatInterval))
	}
	v.tls("kafka.tls", &k.TLS)
	v.sasl("kafka.sasl", &k.SASL)
}

func (v *validator) clickhouse(c *ClickHouse) {
	if len(c.Addr) == 0 {
		v.bad("clickhouse.addr", "must list at least one server (host:port of the native protocol)")
	}
	for i, a := range c.Addr {
		if err := checkHostPort(a, false, false); err != nil {
			v.bad(fmt.Sprintf("clickhouse.addr[%d]", i), "%v", err)
		}
	}
	if !databaseRE.MatchString(c.Database) {
		v.bad("clickhouse.database", "%q is not a valid database name (letters, digits and _, not starting with a digit)", c.Database)
	}
	if c.Cluster != "" && !databaseRE.MatchString(c.Cluster) {
		v.bad("clickhouse.cluster", "%q is not a valid cluster name (letters, digits and _, not starting with a digit)", c.Cluster)
	}
	if c.Username == "" {
		v.bad("clickhouse.username", "must not be empty")
	}
	if c.PasswordFile != "" {
		v.file("clickhouse.password_file", c.PasswordFile)
	}
	v.positive("clickhouse.dial_timeout", c.DialTimeout)
	v.positive("clickhouse.read_timeout", c.ReadTimeout)
	if c.MaxOpenConns < 1 {
		v.bad("clickhouse.max_open_conns", "must be at least 1, got %d", c.MaxOpenConns)
	}
	v.oneOf("clickhouse.compression", c.Compression, "auto", "none", "lz4", "zstd")
	v.tls("clickhouse.tls", &c.TLS)
	for _, r := range []struct {
		key  string
		days int
	}{
		{"clickhouse.retention.events_days", c.Retention.EventsDays},
		{"clickhouse.retention.event_subjects_days", c.Retention.EventSubjectsDays},
		{"clickhouse.retention.dead_letters_days", c.Retention.DeadLettersDays},
		{"clickhouse.retention.anomalies_days", c.Retention.AnomaliesDays},
	} {
		if r.days < 0 {
			v.bad(r.key, "must be 0 (keep everything) or a number of days, got %d", r.days)
		}
	}
	if c.Retention.CheckInterval < time.Minute {
		v.bad("clickhouse.retention.check_interval", "must be at least 1m, got %s", c.Retention.CheckInterval)
	}
}

func (v *validator) tls(prefix string, t *TLS) {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		v.badAlso(prefix+".key_file", []string{prefix + ".cert_file"}, "must be set with %s.cert_file", prefix)
	case t.CertFile == "" && t.KeyFile != "":
		v.badAlso(prefix+".cert_file", []string{prefix + ".key_file"}, "must be set with %s.key_file", prefix)
	}
	if !t.Enabled {
		return
	}
	for _, f := range []struct{ key, path string }{
		{prefix + ".ca_file", t.CAFile},
		{prefix + ".cert_file", t.CertFile},
		{prefix + ".key_file", t.KeyFile},
	} {
		if f.path != "" {
			v.file(f.key, f.path)
		}
	}
}

var saslMechanisms = []string{"plain", "scram-sha-256", "scram-sha-512"}

func (v *validator) sasl(prefix string, s *SASL) {
	if s.Mechanism == "" {
		if s.Username != "" || s.PasswordFile != "" {
			v.badAlso(prefix+".mechanism", []string{prefix + ".username", prefix + ".password_file"},
				"must be set (one of %s) when %s.username or %s.password_file is", strings.Join(saslMechanisms, ", "), prefix, prefix)
		}
		return
	}
	if !slices.Contains(saslMechanisms, s.Mechanism) {
		v.bad(prefix+".mechanism", "must be one of %s (or empty for no SASL), got %q", strings.Join(saslMechanisms, ", "), s.Mechanism)
	}
	if s.Username == "" {
		v.badAlso(prefix+".username", []string{prefix + ".mechanism"}, "must be set when %s.mechanism is %q", prefix, s.Mechanism)
	}
	if s.PasswordFile == "" {
		v.badAlso(prefix+".password_file", []string{prefix + ".mechanism"}, "must be set when %s.mechanism is %q", prefix, s.Mechanism)
	} else {
		v.file(prefix+".password_file", s.PasswordFile)
	}
}

// topic checks a Kafka topic (or group) name.
func (v *validator) topic(key, name string) {
	switch {
	case name == "":
		v.bad(key, "must not be empty")
	case name == "." || name == "..":
		v.bad(key, "%q is not a valid Kafka name", name)
	case !kafkaTopicRE.MatchString(name):
		v.bad(key, "%q is not a valid Kafka name (at most 249 of a-z A-Z 0-9 . _ -)", name)
	}
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.bad(key, "must be positive, got %s", fmtDuration(d))
	}
}

func (v *validator) oneOf(key, got string, allowed ...string) {
	if !slices.Contains(allowed, got) {
		v.bad(key, "must be one of %s, got %q", strings.Join(allowed, ", "), got)
	}
}

// file checks that path names an existing regular file.
func (v *validator) file(key, path string) {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", pe.Path, pe.Err)
		}
		v.bad(key, "%v", err)
	case fi.IsDir():
		v.bad(key, "%s is a directory, not a file", path)
	}
}

// checkHostPort checks a host:port address with a numeric port.
func checkHostPort(addr string, allowEmptyHost, allowZeroPort bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("%q is not host:port: %s", addr, ae.Err)
		}
		return fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	if host == "" && !allowEmptyHost {
		return fmt.Errorf("%q is not host:port: missing host", addr)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("%q is not host:port: invalid host %q", addr, host)
	}
	n, err := strconv.Atoi(port)
	lo := 1
	if allowZeroPort {
		lo = 0
	}
	if err != nil || n < lo || n > 65535 {
		return fmt.Errorf("%q is not host:port: port %q must be a number from %d to 65535", addr, port, lo)
	}
	return nil
}
