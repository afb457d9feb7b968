package config

import (
	"fmt"
	"os"
	"strings"
)

// ClickHousePasswordEnv is the environment variable that may hold the ClickHouse password instead of clickhouse.password_file.
const ClickHousePasswordEnv = "VIGIL_CLICKHOUSE_PASSWORD"

// Password returns the ClickHouse password from password_file (trailing
// newline trimmed) or else from VIGIL_CLICKHOUSE_PASSWORD via getenv (nil
// means no environment), "" when neither is set, and an error naming the key
// when both are set or the file is unreadable or empty.
func (c ClickHouse) Password(getenv func(string) (string, bool)) (string, error) {
	var env string
	var fromEnv bool
	if getenv != nil {
		env, fromEnv = getenv(ClickHousePasswordEnv)
	}
	if c.PasswordFile != "" {
		if fromEnv {
			return "", fmt.Errorf("clickhouse.password_file and %s are both set; use one", ClickHousePasswordEnv)
		}
		return ReadSecret("clickhouse.password_file", c.PasswordFile)
	}
	return env, nil
}

// Password returns the SASL password read from password_file (trailing
// newline trimmed), or "" when SASL is off; errors name the key.
func (s SASL) Password() (string, error) {
	if s.PasswordFile == "" {
		if s.Mechanism != "" {
			return "", fmt.Errorf("kafka.sasl.password_file: must be set when kafka.sasl.mechanism is %q", s.Mechanism)
		}
		return "", nil
	}
	return ReadSecret("kafka.sasl.password_file", s.PasswordFile)
}

// ReadSecret reads a one-line secret file (trailing newline trimmed); an
// unreadable or empty file is an error naming key, never quoting the content.
func ReadSecret(key, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", key, path)
	}
	return s, nil
}
