package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/alerts"
	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/revoke"
)

// env returns a getenv backed by m.
func env(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// equal compares two configs, ignoring where their values came from.
func equal(t *testing.T, got *Config, want Config) {
	t.Helper()
	g := *got
	g.src, want.src = nil, nil
	if !reflect.DeepEqual(g, want) {
		gy, _ := g.Redacted()
		wy, _ := want.Redacted()
		t.Errorf("config mismatch\n--- got:\n%s\n--- want:\n%s", gy, wy)
	}
}

func TestLoadFiles(t *testing.T) {
	const sec = "testdata/secrets/"
	tests := []struct {
		file    string
		want    func() Config // nil when an error is expected
		wantErr []string      // one substring per error line, in order
	}{
		{
			file: "good.yaml",
			want: func() Config {
				return Config{
					Kafka: Kafka{
						Brokers:           []string{"kafka-1.internal:9092", "kafka-2.internal:9092", "[fd00::3]:9092"},
						Topic:             "auth.session-events",
						Group:             "vigil-prod",
						DLQTopic:          "auth.session-events.dlq",
						ClientID:          "vigil-eu-1",
						SessionTimeout:    45 * time.Second,
						RebalanceTimeout:  time.Minute,
						HeartbeatInterval: 5 * time.Second,
						TLS: TLS{
							Enabled:  true,
							CAFile:   sec + "ca.pem",
							CertFile: sec + "client.pem",
							KeyFile:  sec + "client-key.pem",
						},
						SASL: SASL{Mechanism: "scram-sha-512", Username: "vigil", PasswordFile: sec + "kafka-password"},
					},
					ClickHouse: ClickHouse{
						Addr:         []string{"ch-1.internal:9440", "ch-2.internal:9440"},
						Database:     "vigil_prod",
						Username:     "vigil",
						PasswordFile: sec + "clickhouse-password",
						DialTimeout:  2 * time.Second,
						ReadTimeout:  2 * time.Minute,
						MaxOpenConns: 16,
						Compression:  "zstd",
						TLS:          TLS{Enabled: true, CAFile: sec + "ca.pem", InsecureSkipVerify: true},
						Retention:    Retention{EventsDays: 400, EventSubjectsDays: 90, DeadLettersDays: 30, AnomaliesDays: 365, CheckInterval: 30 * time.Minute},
					},
					Ingest: ingest.Config{
						BatchSize:       10000,
						FlushInterval:   500 * time.Millisecond,
						BatchBytes:      16 << 20,
						QueueSize:       5000,
						MaxMessageBytes: 131072,
						MaxFutureSkew:   time.Minute,
						RetryInitial:    250 * time.Millisecond,
						RetryMax:        30 * time.Second,
						DrainTimeout:    30 * time.Second,
						LagInterval:     10 * time.Second,
						StartOffset:     "latest",
					},
					Revoke: revoke.DefaultConfig(),
					Alerts: alerts.DefaultConfig(),
					Detect: detect.Config{
						StateTTL:           720 * time.Hour,
						RebuildHorizon:     12 * time.Hour,
						RebuildTimeout:     5 * time.Minute,
						TokenReuse:         detect.TokenReuseConfig{Shadow: true, Leeway: 5 * time.Second, RealertAfter: time.Hour},
						SessionHijack:      detect.SessionHijackConfig{Shadow: true, Window: 5 * time.Minute, MaxTravelKMH: 900.5, RealertAfter: 2 * time.Hour},
						UseAfterRevocation: detect.UseAfterRevocationConfig{Shadow: true, Grace: 30 * time.Second},
						Window:             detect.DefaultConfig().Window,
						LoginStorm:         detect.DefaultConfig().LoginStorm,
						SessionChurn:       detect.DefaultConfig().SessionChurn,
					},
					Admin:   Admin{Listen: "0.0.0.0:9464"},
					Log:     Log{Level: "debug", Format: "json"},
					Tracing: Tracing{OTLPEndpoint: "http://otel-collector.internal:4318", SampleRatio: 0.25, ServiceName: "vigil-eu-1"},
				}
			},
		},
		{
			file: "minimal.yaml",
			want: func() Config {
				c := Default()
				c.Kafka.Brokers = []string{"kafka.internal:9092"}
				c.ClickHouse.Addr = []string{"clickhouse.internal:9000"}
				c.ClickHouse.Username = "vigil"
				c.ClickHouse.PasswordFile = sec + "clickhouse-password"
				return c
			},
		},
		{
			file: "empty.yaml",
			want: Default,
		},
		{
			file: "misspelled.yaml",
			wantErr: []string{
				`testdata/misspelled.yaml:6: unknown key "kafka.brokrs" (did you mean "kafka.brokers"?)`,
				`testdata/misspelled.yaml:9: unknown key "clickhouse.adr" (did you mean "clickhouse.addr"?)`,
				`testdata/misspelled.yaml:10: unknown key "clickhouse.databse" (did you mean "clickhouse.database"?)`,
				`testdata/misspelled.yaml:12: unknown key "ingest.batchsize" (did you mean "ingest.batch_size"?)`,
				`testdata/misspelled.yaml:14: unknown key "log.Level" (did you mean "log.level"?)`,
			},
		},
		{
			file: "bad_types.yaml",
			wantErr: []string{
				`testdata/bad_types.yaml:3: clickhouse.max_open_conns: cannot parse "many" as an integer`,
				`testdata/bad_types.yaml:5: clickhouse.tls.enabled: cannot parse "maybe" as a boolean`,
				`testdata/bad_types.yaml:7: kafka.brokers: expected a list, got "kafka.internal:9092"`,
				`testdata/bad_types.yaml:8: kafka.topic: expected a string, got a list`,
				`testdata/bad_types.yaml:9: kafka.tls: expected a mapping, got "true" (did you mean "kafka.tls.enabled: true"?)`,
				`testdata/bad_types.yaml:11: ingest.batch_size: cannot parse "1.5" as an integer`,
				`testdata/bad_types.yaml:12: admin: expected a mapping, got "9464"`,
			},
		},
		{
			file: "bad_values.yaml",
			wantErr: []string{
				`testdata/bad_values.yaml:4: kafka.brokers[1]: "kafka.internal" is not host:port: missing port`,
				`testdata/bad_values.yaml:5: kafka.brokers[2]: "kafka.internal:99999" is not host:port: port "99999" must be a number from 1 to 65535`,
				`testdata/bad_values.yaml:6: kafka.topic: "session events" is not a valid Kafka name`,
				`testdata/bad_values.yaml:8: kafka.dlq_topic: "session events" is not a valid Kafka name`,
				`testdata/bad_values.yaml:8: kafka.dlq_topic: must differ from kafka.topic`,
				`testdata/bad_values.yaml:9: ingest.drain_timeout: must be shorter than kafka.session_timeout (10s), got 10s`,
				`testdata/bad_values.yaml:10: kafka.heartbeat_interval: must be less than kafka.session_timeout (10s), got 10s`,
				`testdata/bad_values.yaml:13: kafka.tls.ca_file: testdata/secrets/does-not-exist.pem: no such file or directory`,
				`testdata/bad_values.yaml:14: kafka.tls.key_file: must be set with kafka.tls.cert_file`,
				`testdata/bad_values.yaml:16: kafka.sasl.mechanism: must be one of plain, scram-sha-256, scram-sha-512`,
				`testdata/bad_values.yaml:16: kafka.sasl.username: must be set when kafka.sasl.mechanism is "gssapi"`,
				`testdata/bad_values.yaml:16: kafka.sasl.password_file: must be set when kafka.sasl.mechanism is "gssapi"`,
				`testdata/bad_values.yaml:18: clickhouse.addr: must list at least one server`,
				`testdata/bad_values.yaml:19: clickhouse.database: "vigil-prod" is not a valid database name`,
				`testdata/bad_values.yaml:20: clickhouse.compression: must be one of auto, none, lz4, zstd, got "snappy"`,
				`testdata/bad_values.yaml:21: clickhouse.max_open_conns: must be at least 1, got 0`,
				`testdata/bad_values.yaml:22: clickhouse.dial_timeout: must be positive, got -1s`,
				`testdata/bad_values.yaml:24: ingest.batch_size: must be between 1 and 1000000, got 0`,
				`testdata/bad_values.yaml:25: ingest.start_offset: must be earliest or latest, got "newest"`,
				`testdata/bad_values.yaml:27: admin.listen: "localhost" is not host:port`,
				`testdata/bad_values.yaml:29: log.level: must be one of debug, info, warn, error, got "verbose"`,
				`testdata/bad_values.yaml:30: log.format: must be one of text, json, got "logfmt"`,
			},
		},
		{
			file: "unknown_section.yaml",
			wantErr: []string{
				`testdata/unknown_section.yaml:4: unknown key "metrics" (the top level takes: kafka, clickhouse, ingest, detect, revoke, alerts, slo, admin, log, tracing, privacy)`,
			},
		},
		{
			file: "bad_duration.yaml",
			wantErr: []string{
				`testdata/bad_duration.yaml:2: kafka.session_timeout: cannot parse "30" as a duration: add a unit, e.g. "30s"`,
				`testdata/bad_duration.yaml:3: kafka.rebalance_timeout: cannot parse "30 seconds" as a duration`,
				`testdata/bad_duration.yaml:6: clickhouse.read_timeout: cannot parse "1.5" as a duration: add a unit`,
			},
		},
		{
			file: "not_a_mapping.yaml",
			wantErr: []string{
				`testdata/not_a_mapping.yaml:2: the top level must be a mapping of sections (kafka, clickhouse, ingest, detect, revoke, alerts, slo, admin, log, tracing, privacy), got a list`,
			},
		},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			got, err := Load(filepath.Join("testdata", tt.file), nil)
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
			equal(t, got, tt.want())
		})
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no test case", f)
		}
	}
}

func TestLoadNoFile(t *testing.T) {
	got, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, Default())
	if _, err := Load("testdata/does-not-exist.yaml", nil); err == nil || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Errorf("missing file: got %v", err)
	}
}

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, c *Config)
		wantErr []string
	}{
		{name: "only comments", yaml: "# nothing here\n\n", check: isDefault},
		{name: "explicit null document", yaml: "---\n~\n", check: isDefault},
		{name: "empty sections keep defaults", yaml: "kafka:\nclickhouse: {}\n", check: isDefault},
		{name: "trailing document marker", yaml: "log:\n  level: warn\n---\n", check: func(t *testing.T, c *Config) {
			if c.Log.Level != "warn" {
				t.Errorf("log.level = %q", c.Log.Level)
			}
		}},
		{
			name:    "bad cluster name",
			yaml:    "clickhouse:\n  cluster: prod-cluster\n",
			wantErr: []string{`x.yaml:2: clickhouse.cluster: "prod-cluster" is not a valid cluster name`},
		},
		{name: "cluster", yaml: "clickhouse:\n  cluster: prod_2\n", check: func(t *testing.T, c *Config) {
			if c.ClickHouse.Cluster != "prod_2" {
				t.Errorf("clickhouse.cluster = %q", c.ClickHouse.Cluster)
			}
		}},
		{
			name:    "two documents",
			yaml:    "kafka:\n  topic: a\n---\nlog:\n  level: warn\n",
			wantErr: []string{`x.yaml:4: a second YAML document starts here`},
		},
		{
			name:    "scalar top level",
			yaml:    "\n\nhello\n",
			wantErr: []string{`x.yaml:3: the top level must be a mapping of sections`},
		},
		{
			name:    "syntax error",
			yaml:    "kafka:\n topic: a\n  group: b\n",
			wantErr: []string{`x.yaml:3: invalid YAML: mapping values are not allowed`},
		},
		{
			name:    "duplicate key",
			yaml:    "kafka:\n  topic: a\n  topic: b\n",
			wantErr: []string{`x.yaml:3: kafka.topic: duplicate key (first set at line 2)`},
		},
		{
			name:    "key with no value",
			yaml:    "kafka:\n  topic:\n  session_timeout: ~\n",
			wantErr: []string{`x.yaml:2: kafka.topic: no value (delete the key to use the default, or write "" for an empty value)`, `x.yaml:3: kafka.session_timeout: no value`},
		},
		{
			name:    "key in the wrong section",
			yaml:    "kafka:\n  batch_size: 5\n",
			wantErr: []string{`x.yaml:2: unknown key "kafka.batch_size" (did you mean "ingest.batch_size"?)`},
		},
		{
			name:    "wrong section prefers the nearest",
			yaml:    "kafka:\n  password_file: p\n",
			wantErr: []string{`x.yaml:2: unknown key "kafka.password_file" (did you mean "kafka.sasl.password_file"?)`},
		},
		{
			name:    "misspelled section",
			yaml:    "clikhouse:\n  database: x\n",
			wantErr: []string{`x.yaml:1: unknown key "clikhouse" (did you mean "clickhouse"?)`},
		},
		{
			name:    "bad list element",
			yaml:    "kafka:\n  brokers:\n    - a:1\n    - [b, c]\n",
			wantErr: []string{`x.yaml:4: kafka.brokers[1]: expected a string, got a list`},
		},
		{
			name:    "integer out of range",
			yaml:    "clickhouse:\n  max_open_conns: 99999999999999999999\n",
			wantErr: []string{`x.yaml:2: clickhouse.max_open_conns: cannot parse "99999999999999999999" as an integer: out of range`},
		},
		{
			name:    "all errors at once, in line order",
			yaml:    "log:\n  levl: info\nkafka:\n  topic: [x]\n  session_timeout: 5\n",
			wantErr: []string{`x.yaml:2: unknown key "log.levl"`, `x.yaml:4: kafka.topic: expected a string`, `x.yaml:5: kafka.session_timeout: cannot parse "5" as a duration: add a unit`},
		},
		{
			name: "zero duration needs no unit",
			yaml: "ingest:\n  max_future_skew: 0\n",
			check: func(t *testing.T, c *Config) {
				if c.Ingest.MaxFutureSkew != 0 {
					t.Errorf("max_future_skew = %s", c.Ingest.MaxFutureSkew)
				}
			},
		},
		{
			name: "extension keys are unknown",
			yaml: "x-tls: &tls\n  enabled: false\n  insecure_skip_verify: true\n",
			wantErr: []string{
				`x.yaml:1: unknown key "x-tls"`,
			},
		},
		{
			name: "merge key",
			yaml: "kafka:\n  tls: &tls\n    insecure_skip_verify: true\n    enabled: false\nclickhouse:\n  tls:\n    <<: *tls\n    enabled: false\n  addr: &a [h:1]\n",
			check: func(t *testing.T, c *Config) {
				if !c.ClickHouse.TLS.InsecureSkipVerify || c.ClickHouse.TLS.Enabled || c.ClickHouse.Addr[0] != "h:1" {
					t.Errorf("clickhouse = %+v", c.ClickHouse)
				}
			},
		},
		{
			name: "strings may look like other types",
			yaml: "kafka:\n  client_id: 123\n  group: true\n",
			check: func(t *testing.T, c *Config) {
				if c.Kafka.ClientID != "123" || c.Kafka.Group != "true" {
					t.Errorf("client_id = %q, group = %q", c.Kafka.ClientID, c.Kafka.Group)
				}
			},
		},
		{
			name:    "validation errors carry the line",
			yaml:    "clickhouse:\n  addr:\n    - ok:9000\n    - :9000\n  database: 1st\n",
			wantErr: []string{`x.yaml:4: clickhouse.addr[1]: ":9000" is not host:port: missing host`, `x.yaml:5: clickhouse.database: "1st" is not a valid database name`},
		},
		{
			name: "cross-key error points at the key that is set",
			yaml: "kafka:\n  session_timeout: 2s\n",
			wantErr: []string{
				`x.yaml:2: kafka.heartbeat_interval: must be less than kafka.session_timeout (2s), got 3s`,
				`x.yaml:2: ingest.drain_timeout: must be shorter than kafka.session_timeout (2s), got 10s`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "x.yaml", nil)
			if tt.wantErr != nil {
				testenv.WantErrorLines(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func isDefault(t *testing.T, c *Config) {
	t.Helper()
	equal(t, c, Default())
}

func TestValidateWithoutSource(t *testing.T) {
	c := Default()
	c.Kafka.DLQTopic = c.Kafka.Topic
	c.Kafka.TLS.KeyFile = "k.pem"
	c.Kafka.SASL.Username = "u"
	c.Admin.Listen = ":0"
	c.Ingest.RetryMax = time.Millisecond
	testenv.WantErrorLines(t, c.Validate(), []string{
		`kafka.dlq_topic: must differ from kafka.topic ("session-events")`,
		`kafka.tls.cert_file: must be set with kafka.tls.key_file`,
		`kafka.sasl.mechanism: must be set (one of plain, scram-sha-256, scram-sha-512) when kafka.sasl.username or kafka.sasl.password_file is`,
		`ingest.retry_max: must be at least retry_initial`,
	})
	for _, line := range strings.Split(c.Validate().Error(), "\n") {
		if regexp.MustCompile(`^\S+:\d+: `).MatchString(line) {
			t.Errorf("error without a file has a position: %q", line)
		}
	}
}

func TestCheckHostPort(t *testing.T) {
	for _, tt := range []struct {
		addr      string
		emptyHost bool
		ok        bool
	}{
		{"kafka:9092", false, true},
		{"10.0.0.1:1", false, true},
		{"[::1]:65535", false, true},
		{"kafka", false, false},
		{"kafka:0", false, false},
		{"kafka:65536", false, false},
		{"kafka:http", false, false},
		{":9092", false, false},
		{":9092", true, true},
		{"a b:9092", false, false},
		{"::1:9092", false, false},
		{"", false, false},
	} {
		err := checkHostPort(tt.addr, tt.emptyHost, false)
		if (err == nil) != tt.ok {
			t.Errorf("checkHostPort(%q, %v) = %v, want ok=%v", tt.addr, tt.emptyHost, err, tt.ok)
		}
	}
}

func TestTLSAndSASLFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key, pw := write("c.pem", "c"), write("k.pem", "k"), write("pw", "secret\n")

	c := Default()
	c.ClickHouse.TLS = TLS{Enabled: true, CertFile: cert, KeyFile: key, CAFile: filepath.Join(dir, "missing.pem")}
	c.Kafka.SASL = SASL{Mechanism: "plain", Username: "u", PasswordFile: pw}
	testenv.WantErrorLines(t, c.Validate(), []string{`clickhouse.tls.ca_file: ` + filepath.Join(dir, "missing.pem") + `: no such file or directory`})

	c.ClickHouse.TLS.CAFile = dir
	testenv.WantErrorLines(t, c.Validate(), []string{`clickhouse.tls.ca_file: ` + dir + ` is a directory`})

	// Files are only checked when TLS is enabled.
	c.ClickHouse.TLS.Enabled = false
	if err := c.Validate(); err != nil {
		t.Errorf("TLS disabled: %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	c, err := Load("testdata/minimal.yaml", env(map[string]string{
		"VIGIL_KAFKA_BROKERS":           " k1:9092, k2:9092 ,[::1]:9092",
		"VIGIL_KAFKA_TOPIC":             "events.v2",
		"VIGIL_KAFKA_TLS_ENABLED":       "true",
		"VIGIL_CLICKHOUSE_ADDR":         "ch:9000",
		"VIGIL_CLICKHOUSE_DATABASE":     "vigil_test",
		"VIGIL_CLICKHOUSE_READ_TIMEOUT": "90s",
		"VIGIL_INGEST_BATCH_SIZE":       "1_000",
		"VIGIL_ADMIN_LISTEN":            "",
		"VIGIL_LOG_FORMAT":              "json",
		"VIGIL_UNRELATED":               "ignored",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	// From the file:
	want.ClickHouse.Username = "vigil"
	want.ClickHouse.PasswordFile = "testdata/secrets/clickhouse-password"
	// From the environment, over the file and the defaults:
	want.Kafka.Brokers = []string{"k1:9092", "k2:9092", "[::1]:9092"}
	want.Kafka.Topic = "events.v2"
	want.Kafka.TLS.Enabled = true
	want.ClickHouse.Addr = []string{"ch:9000"}
	want.ClickHouse.Database = "vigil_test"
	want.ClickHouse.ReadTimeout = 90 * time.Second
	want.Ingest.BatchSize = 1000
	want.Admin.Listen = ""
	want.Log.Format = "json"
	equal(t, c, want)
}

func TestEnvOverrideWithoutFile(t *testing.T) {
	c, err := Load("", env(map[string]string{"VIGIL_CLICKHOUSE_ADDR": "a:1,b:2"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a:1", "b:2"}; !reflect.DeepEqual(c.ClickHouse.Addr, want) {
		t.Errorf("addr = %q, want %q", c.ClickHouse.Addr, want)
	}
}

func TestEnvBadValues(t *testing.T) {
	_, err := Load("testdata/good.yaml", env(map[string]string{
		"VIGIL_INGEST_BATCH_SIZE":       "x",
		"VIGIL_KAFKA_SESSION_TIMEOUT":   "30",
		"VIGIL_KAFKA_TLS_ENABLED":       "yes please",
		"VIGIL_CLICKHOUSE_DIAL_TIMEOUT": "soon",
	}))
	testenv.WantErrorLines(t, err, []string{
		`VIGIL_KAFKA_SESSION_TIMEOUT (kafka.session_timeout): cannot parse "30" as a duration: add a unit, e.g. "30s"`,
		`VIGIL_KAFKA_TLS_ENABLED (kafka.tls.enabled): cannot parse "yes please" as a boolean`,
		`VIGIL_CLICKHOUSE_DIAL_TIMEOUT (clickhouse.dial_timeout): cannot parse "soon" as a duration`,
		`VIGIL_INGEST_BATCH_SIZE (ingest.batch_size): cannot parse "x" as an integer`,
	})
}

func TestEnvInvalidValuesNameTheVariable(t *testing.T) {
	_, err := Load("testdata/good.yaml", env(map[string]string{
		"VIGIL_KAFKA_BROKERS":       "k1:9092,k2",
		"VIGIL_CLICKHOUSE_DATABASE": "vigil-test", // also set in good.yaml: the variable wins
		"VIGIL_INGEST_BATCH_SIZE":   "0",
		"VIGIL_CLICKHOUSE_ADDR":     "",
	}))
	testenv.WantErrorLines(t, err, []string{
		`VIGIL_KAFKA_BROKERS: kafka.brokers[1]: "k2" is not host:port`,
		`VIGIL_CLICKHOUSE_ADDR: clickhouse.addr: must list at least one server`,
		`VIGIL_CLICKHOUSE_DATABASE: clickhouse.database: "vigil-test" is not a valid database name`,
		`VIGIL_INGEST_BATCH_SIZE: ingest.batch_size: must be between 1 and 1000000, got 0`,
	})
}

func TestEveryKeyHasAnEnvVar(t *testing.T) {
	vars := EnvVars()
	names := map[string]bool{}
	keys := map[string]bool{}
	nameRE := regexp.MustCompile(`^VIGIL_[A-Z0-9_]+$`)
	for _, v := range vars {
		if !nameRE.MatchString(v.Name) || names[v.Name] {
			t.Errorf("bad or duplicate variable name %q", v.Name)
		}
		names[v.Name] = true
		keys[v.Key] = true
		if v.Name == ClickHousePasswordEnv {
			t.Errorf("%s collides with a key", ClickHousePasswordEnv)
		}
		// Setting each variable to its documented default parses and
		// leaves the defaults unchanged.
		c, err := Load("", env(map[string]string{v.Name: v.Default}))
		if err != nil {
			t.Errorf("%s=%q: %v", v.Name, v.Default, err)
			continue
		}
		equal(t, c, Default())
		if l, ok := c.src.locate(v.Key); !ok || l.env != v.Name {
			t.Errorf("%s: source of %s = %+v", v.Name, v.Key, l)
		}
	}
	// Every leaf key of the struct has a variable.
	for _, k := range allKeys() {
		if !keys[k] && !isSectionKey(k) {
			t.Errorf("key %s has no environment variable", k)
		}
	}
}

func isSectionKey(key string) bool {
	for _, k := range allKeys() {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

func TestEnvVars(t *testing.T) {
	want := map[string]EnvVar{
		"VIGIL_KAFKA_BROKERS":          {Name: "VIGIL_KAFKA_BROKERS", Key: "kafka.brokers", Default: "127.0.0.1:9092"},
		"VIGIL_CLICKHOUSE_ADDR":        {Name: "VIGIL_CLICKHOUSE_ADDR", Key: "clickhouse.addr", Default: "127.0.0.1:9000"},
		"VIGIL_CLICKHOUSE_DATABASE":    {Name: "VIGIL_CLICKHOUSE_DATABASE", Key: "clickhouse.database", Default: "vigil"},
		"VIGIL_ADMIN_LISTEN":           {Name: "VIGIL_ADMIN_LISTEN", Key: "admin.listen", Default: "127.0.0.1:9464"},
		"VIGIL_INGEST_BATCH_SIZE":      {Name: "VIGIL_INGEST_BATCH_SIZE", Key: "ingest.batch_size", Default: "50000"},
		"VIGIL_KAFKA_TLS_ENABLED":      {Name: "VIGIL_KAFKA_TLS_ENABLED", Key: "kafka.tls.enabled", Default: "false"},
		"VIGIL_INGEST_MAX_FUTURE_SKEW": {Name: "VIGIL_INGEST_MAX_FUTURE_SKEW", Key: "ingest.max_future_skew", Default: "5m"},
	}
	for _, v := range EnvVars() {
		if w, ok := want[v.Name]; ok {
			if v != w {
				t.Errorf("got %+v, want %+v", v, w)
			}
			delete(want, v.Name)
		}
	}
	for name := range want {
		t.Errorf("EnvVars lacks %s", name)
	}
}

func TestClickHousePassword(t *testing.T) {
	dir := t.TempDir()
	file := func(content string) string {
		f, err := os.CreateTemp(dir, "pw")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(content)
		f.Close()
		return f.Name()
	}
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "file", file: file("s3cret\n"), want: "s3cret"},
		{name: "file with CRLF", file: file("s3cret\r\n"), want: "s3cret"},
		{name: "file keeps inner spaces", file: file(" a b \n"), want: " a b "},
		{name: "env", env: map[string]string{"VIGIL_CLICKHOUSE_PASSWORD": "from-env"}, want: "from-env"},
		{name: "neither", want: ""},
		{name: "both", file: file("x\n"), env: map[string]string{"VIGIL_CLICKHOUSE_PASSWORD": "y"}, wantErr: "clickhouse.password_file and VIGIL_CLICKHOUSE_PASSWORD are both set"},
		{name: "missing file", file: filepath.Join(dir, "nope"), wantErr: "clickhouse.password_file: open " + filepath.Join(dir, "nope")},
		{name: "empty file", file: file("\n"), wantErr: "clickhouse.password_file: " + dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default().ClickHouse
			c.PasswordFile = tt.file
			got, err := c.Password(env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Password() = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
	// A nil getenv means no environment.
	if got, err := Default().ClickHouse.Password(nil); got != "" || err != nil {
		t.Errorf("nil getenv: %q, %v", got, err)
	}
}

func TestClickHousePasswordFromLoadedFile(t *testing.T) {
	c, err := Load("testdata/minimal.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ClickHouse.Password(env(nil))
	if err != nil || got != "ch-secret" {
		t.Fatalf("Password() = %q, %v", got, err)
	}
}

func TestSASLPassword(t *testing.T) {
	c, err := Load("testdata/good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Kafka.SASL.Password(); err != nil || got != "kafka-secret" {
		t.Errorf("Password() = %q, %v", got, err)
	}
	if got, err := (SASL{}).Password(); err != nil || got != "" {
		t.Errorf("no SASL: %q, %v", got, err)
	}
	if _, err := (SASL{Mechanism: "plain", Username: "u"}).Password(); err == nil || !strings.Contains(err.Error(), "kafka.sasl.password_file") {
		t.Errorf("no file: %v", err)
	}
	_, err = (SASL{Mechanism: "plain", PasswordFile: "testdata/secrets/nope"}).Password()
	if err == nil || !strings.HasPrefix(err.Error(), "kafka.sasl.password_file: ") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestRedactedRoundTrip(t *testing.T) {
	for _, f := range []string{"good.yaml", "minimal.yaml", "empty.yaml"} {
		c, err := Load(filepath.Join("testdata", f), nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Redacted()
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"ch-secret", "kafka-secret"} {
			if strings.Contains(string(out), secret) {
				t.Errorf("%s: Redacted output contains a secret", f)
			}
		}
		// Paths are already resolved, so parse without a file name.
		back, err := Parse(out, "", nil)
		if err != nil {
			t.Fatalf("%s: parsing Redacted output: %v\n%s", f, err, out)
		}
		equal(t, back, *c)
	}
}

func TestRelativePathsFollowTheFile(t *testing.T) {
	c, err := decode([]byte("clickhouse:\n  password_file: pw\nkafka:\n  tls:\n    ca_file: /abs/ca.pem\n"), "/etc/vigil/vigil.yaml", env(map[string]string{"VIGIL_KAFKA_SASL_PASSWORD_FILE": "rel/pw"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ClickHouse.PasswordFile != "/etc/vigil/pw" || c.Kafka.TLS.CAFile != "/abs/ca.pem" || c.Kafka.SASL.PasswordFile != "rel/pw" {
		t.Errorf("paths: %q %q %q", c.ClickHouse.PasswordFile, c.Kafka.TLS.CAFile, c.Kafka.SASL.PasswordFile)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"brokers", "brokers", 0}, {"brokrs", "brokers", 1},
		{"borkers", "brokers", 1}, {"topic", "tpoic", 1}, {"abc", "", 3}, {"kitten", "sitting", 3},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestDocsCoverEveryKey keeps docs/configuration.md in step with the code:
// every key has a row with its variable and default, no row names a key that
// does not exist, and the example file decodes.
func TestDocsCoverEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9_.]+)` \\| `(VIGIL_[A-Z0-9_]+)` \\| ([^|]*) \\|")
	type docRow struct{ env, def string }
	rows := map[string]docRow{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		def := strings.Trim(strings.TrimSpace(m[3]), "`")
		if def == `""` {
			def = ""
		}
		rows[m[1]] = docRow{m[2], def}
	}
	vars := EnvVars()
	known := map[string]bool{}
	for _, v := range vars {
		known[v.Key] = true
		r, ok := rows[v.Key]
		switch {
		case !ok:
			t.Errorf("docs/configuration.md has no row for %s", v.Key)
		case r.env != v.Name:
			t.Errorf("docs/configuration.md: %s: variable %s, want %s", v.Key, r.env, v.Name)
		case r.def != v.Default:
			t.Errorf("docs/configuration.md: %s: default %q, want %q", v.Key, r.def, v.Default)
		}
	}
	for k := range rows {
		if !known[k] {
			t.Errorf("docs/configuration.md documents %s, which is not a key", k)
		}
	}
	// Every key also appears somewhere in the text (the table above makes
	// this true; it is the simplest statement of the requirement).
	for _, k := range allKeys() {
		if !strings.Contains(string(doc), k) {
			t.Errorf("docs/configuration.md never mentions %s", k)
		}
	}

	example := regexp.MustCompile("(?s)## Example\n.*?```yaml\n(.*?)```").FindSubmatch(doc)
	if example == nil {
		t.Fatal("docs/configuration.md has no example yaml block under ## Example")
	}
	// The example names files that exist only in a deployment, so decode
	// without validating.
	if _, err := decode(example[1], "docs/configuration.md example", nil); err != nil {
		t.Errorf("example config: %v", err)
	}
}

func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{"VIGIL_KAFKA_BROKRS=x", "VIGIL_KAFKA_BROKERS=k:9092", "VIGIL_CLICKHOUSE_PASSWORD=s", "PATH=/bin", "VIGIL_ADMIN_LISTN=:1"})
	if strings.Join(got, ",") != "VIGIL_ADMIN_LISTN,VIGIL_KAFKA_BROKRS" {
		t.Errorf("got %v", got)
	}
}

// TestSLOSpecFile: the SLO file named by slo.spec_file is loaded and
// checked with the rest of the config; its errors name the key, the file
// and line, the SLO and the field.
func TestSLOSpecFile(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "slos.yaml")
	if err := os.WriteFile(spec, []byte("slos:\n  - name: login\n    objective: 100\n    window: 30d\n    sli: {enforcement: {within: 5s}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfgPath, []byte("slo:\n  spec_file: slos.yaml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(cfgPath, nil)
	want := `vigil.yaml:2: slo.spec_file: ` + spec + `:2: slo "login": objective: must be between 0 and 100 (exclusive), got 100`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want an error containing %q", err, want)
	}
	if err := os.WriteFile(spec, []byte("slos:\n  - name: login\n    objective: 99\n    window: 30d\n    sli: {enforcement: {within: 5s}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SLO.SpecFile != spec {
		t.Errorf("spec_file = %q, want %q (relative to the config file)", c.SLO.SpecFile, spec)
	}
}
