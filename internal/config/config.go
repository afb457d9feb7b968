// Package config loads vigil's configuration: one YAML file whose every key
// can be overridden by a VIGIL_* environment variable.
//
// Precedence is defaults < file < environment. Unknown keys, values of the
// wrong type and invalid values are errors that name the full dotted key and,
// when the value came from the file, its file and line. Secrets never live in
// the Config: it only names the files (or environment variables) they are
// read from, so a Config is always safe to print.
package config

import (
	"fmt"
	"os"
	"time"

	"github.com/vigilhq/vigil/alerts"
	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/pseudonym"
	"github.com/vigilhq/vigil/revoke"
)

// Config is the whole vigil configuration file.
type Config struct {
	// Kafka configures the consumer of session events and the DLQ producer.
	Kafka Kafka `yaml:"kafka"`
	// ClickHouse configures the connection to the event store.
	ClickHouse ClickHouse `yaml:"clickhouse"`
	// Ingest tunes the ingest pipeline (batching, buffering, retries, drain).
	Ingest ingest.Config `yaml:"ingest"`
	// Detect configures the stream detectors (token reuse, hijack, use after revocation).
	Detect detect.Config `yaml:"detect"`
	// Revoke configures automated revocation: policy, guardrails, outbox, revoker and session API adapter.
	Revoke revoke.Config `yaml:"revoke"`
	// Alerts configures the Alertmanagers anomalies are sent to.
	Alerts alerts.Config `yaml:"alerts"`
	// SLO says where the service level objectives come from.
	SLO SLO `yaml:"slo"`
	// Admin configures the admin HTTP listener (metrics and health).
	Admin Admin `yaml:"admin"`
	// Log configures the process log.
	Log Log `yaml:"log"`
	// Tracing configures OpenTelemetry traces.
	Tracing Tracing `yaml:"tracing"`
	// Privacy configures keyed pseudonymization of identifiers before storage.
	Privacy Privacy `yaml:"privacy"`

	// src records where each key's value came from (file:line or an
	// environment variable), so that Validate can point at it. It is nil for
	// a Config built in code.
	src *source
}

// Kafka is the `kafka:` section: brokers, topics, consumer group and security.
type Kafka struct {
	// Brokers are the seed brokers, each host:port.
	Brokers []string `yaml:"brokers"`
	// Topic is the topic session events are consumed from.
	Topic string `yaml:"topic"`
	// Group is the consumer group id shared by every vigil process.
	Group string `yaml:"group"`
	// DLQTopic is the topic invalid messages are written to; it must differ from Topic.
	DLQTopic string `yaml:"dlq_topic"`
	// ClientID identifies this process to the brokers.
	ClientID string `yaml:"client_id"`
	// SessionTimeout is how long the group coordinator waits for a heartbeat before evicting a member.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// RebalanceTimeout is how long members have to rejoin the group during a rebalance.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	// HeartbeatInterval is the period of group heartbeats; it must be less than SessionTimeout.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// TLS configures TLS to the brokers.
	TLS TLS `yaml:"tls"`
	// SASL configures SASL authentication to the brokers.
	SASL SASL `yaml:"sasl"`
}

// TLS configures a TLS client; cert_file and key_file are set together or not at all.
type TLS struct {
	// Enabled turns TLS on; the files named below must then exist.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of CAs to trust instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile is the PEM client certificate for mutual TLS.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file"`
	// InsecureSkipVerify disables server certificate verification (tests only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASL configures Kafka SASL authentication; the password is read from PasswordFile.
type SASL struct {
	// Mechanism is "" (no SASL), plain, scram-sha-256 or scram-sha-512.
	Mechanism string `yaml:"mechanism"`
	// Username is the SASL user name, required with a mechanism.
	Username string `yaml:"username"`
	// PasswordFile is the file holding the SASL password, required with a mechanism.
	PasswordFile string `yaml:"password_file"`
}

// ClickHouse is the `clickhouse:` section: the native-protocol connection.
type ClickHouse struct {
	// Addr lists the servers' native-protocol addresses, each host:port.
	Addr []string `yaml:"addr"`
	// Database is the database vigil's tables live in.
	Database string `yaml:"database"`
	// Cluster names the ClickHouse cluster (remote_servers) the schema is
	// migrated on: replicated local tables with Distributed tables over
	// them; "" means one server.
	Cluster string `yaml:"cluster"`
	// Username is the ClickHouse user.
	Username string `yaml:"username"`
	// PasswordFile is the file holding the password; see Password for the alternatives.
	PasswordFile string `yaml:"password_file"`
	// DialTimeout bounds establishing a connection.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ReadTimeout bounds waiting for a server response.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// MaxOpenConns caps the connection pool.
	MaxOpenConns int `yaml:"max_open_conns"`
	// Compression is the native-protocol block compression: auto (none
	// when every address is loopback, else lz4), none, lz4 or zstd.
	Compression string `yaml:"compression"`
	// TLS configures TLS to the servers.
	TLS TLS `yaml:"tls"`
	// Retention says how many days of each table to keep.
	Retention Retention `yaml:"retention"`
}

// Retention is the `clickhouse.retention:` section: whole day partitions
// older than the given number of days are dropped; 0 keeps everything.
type Retention struct {
	// EventsDays is how many days of events to keep.
	EventsDays int `yaml:"events_days"`
	// EventSubjectsDays is how many days of timeline lookup rows to keep.
	EventSubjectsDays int `yaml:"event_subjects_days"`
	// DeadLettersDays is how many days of dead letters to keep.
	DeadLettersDays int `yaml:"dead_letters_days"`
	// AnomaliesDays is how many days of anomalies to keep (by the first offending event's day).
	AnomaliesDays int `yaml:"anomalies_days"`
	// ActionsDays is how many days of the revocation audit (actions) to keep.
	ActionsDays int `yaml:"actions_days"`
	// CheckInterval is how often expired partitions are looked for.
	CheckInterval time.Duration `yaml:"check_interval"`
}

// Days maps each retained table to its retention in days.
func (r Retention) Days() map[string]int {
	return map[string]int{"events": r.EventsDays, "event_subjects": r.EventSubjectsDays, "dead_letters": r.DeadLettersDays, "anomalies": r.AnomaliesDays, "actions": r.ActionsDays}
}

// SLO is the `slo:` section.
type SLO struct {
	// SpecFile is a YAML file of SLOs (docs/slos.md) replacing the seed SLOs; "" uses the seed SLOs.
	SpecFile string `yaml:"spec_file"`
}

// Admin is the `admin:` section: the HTTP listener for metrics and health.
type Admin struct {
	// Listen is the host:port to listen on; "" disables the listener.
	Listen string `yaml:"listen"`
	// Pprof serves Go's profiler under /debug/pprof/; off by default.
	Pprof bool `yaml:"pprof"`
	// TokenFile holds a bearer token that /metrics and /debug/pprof/ then
	// require; "" leaves them open (health probes are always open).
	TokenFile string `yaml:"token_file"`
}

// Privacy is the `privacy:` section.
type Privacy struct {
	// KeyFile holds the key (at least 16 bytes) under which user ids,
	// session and family ids and IP addresses are replaced by keyed
	// pseudonyms (HMAC-SHA-256) before vigil stores them; "" stores them
	// in clear.
	KeyFile string `yaml:"key_file"`
}

// Key returns the pseudonymization key, the zero (off) Key when key_file
// is not set; errors name the key and never quote the file.
func (p Privacy) Key() (pseudonym.Key, error) {
	if p.KeyFile == "" {
		return nil, nil
	}
	return pseudonym.Load("privacy.key_file", p.KeyFile)
}

// Token returns the admin bearer token read from token_file (trailing
// newline trimmed), "" when none is configured; errors name the key.
func (a Admin) Token() (string, error) {
	if a.TokenFile == "" {
		return "", nil
	}
	return ReadSecret("admin.token_file", a.TokenFile)
}

// Tracing is the `tracing:` section: OpenTelemetry spans exported over OTLP/HTTP.
type Tracing struct {
	// OTLPEndpoint is the collector's OTLP/HTTP base URL, e.g. http://otel-collector:4318; "" disables tracing.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio samples root spans; a producer's sampled traceparent is always honoured.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name resource attribute.
	ServiceName string `yaml:"service_name"`
}

// Log is the `log:` section.
type Log struct {
	// Level is the minimum level logged: debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is the log line format: text or json.
	Format string `yaml:"format"`
}

// EnvVar describes the environment variable that overrides one config key.
type EnvVar struct {
	// Name is the variable, e.g. VIGIL_KAFKA_BROKERS.
	Name string
	// Key is the dotted config key, e.g. kafka.brokers.
	Key string
	// Default is the default value as it would be written in the variable (lists comma-separated).
	Default string
}

// Default returns the configuration used when neither the file nor the
// environment sets a key.
func Default() Config {
	return Config{
		Kafka: Kafka{
			Brokers:           []string{"127.0.0.1:9092"},
			Topic:             "session-events",
			Group:             "vigil",
			DLQTopic:          "vigil.dlq",
			ClientID:          "vigil",
			SessionTimeout:    30 * time.Second,
			RebalanceTimeout:  30 * time.Second,
			HeartbeatInterval: 3 * time.Second,
		},
		ClickHouse: ClickHouse{
			Addr:         []string{"127.0.0.1:9000"},
			Database:     "vigil",
			Username:     "default",
			DialTimeout:  5 * time.Second,
			ReadTimeout:  60 * time.Second,
			MaxOpenConns: 8,
			Compression:  "auto",
			Retention:    Retention{CheckInterval: time.Hour},
		},
		Ingest:  ingest.DefaultConfig(),
		Detect:  detect.DefaultConfig(),
		Revoke:  revoke.DefaultConfig(),
		Alerts:  alerts.DefaultConfig(),
		Admin:   Admin{Listen: "127.0.0.1:9464"},
		Log:     Log{Level: "info", Format: "text"},
		Tracing: Tracing{SampleRatio: 1, ServiceName: "vigil"},
	}
}

// Load reads path (may be "" for defaults only), applies env overrides from
// getenv (os.LookupEnv in production; nil means no overrides), and validates.
func Load(path string, getenv func(string) (string, bool)) (*Config, error) {
	if path == "" {
		return Parse(nil, "", getenv)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path, getenv)
}

// Parse decodes data (the content of filename, which is used in error
// messages and to resolve relative *_file paths), applies env overrides from
// getenv (nil means none) and validates; empty data means defaults.
func Parse(data []byte, filename string, getenv func(string) (string, bool)) (*Config, error) {
	c, err := decode(data, filename, getenv)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode is Parse without validation.
func decode(data []byte, filename string, getenv func(string) (string, bool)) (*Config, error) {
	c := Default()
	c.src = &source{file: filename, where: map[string]loc{}}
	d := &decoder{src: c.src}
	d.document(data, &c)
	if getenv != nil {
		d.env(&c, getenv)
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return &c, nil
}
