package sessionapi

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// loadConfig decodes a testdata file over the defaults, rejecting unknown keys.
func loadConfig(t *testing.T, name string) (Config, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := DefaultConfig()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("decode %s: %w", name, err)
	}
	return c, nil
}

func TestConfigDefaultsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if c.Listen != "127.0.0.1:0" || c.RetryAfter != time.Second || c.Latency != 0 || c.ErrorRate != 0 || c.ThrottleRate != 0 {
		t.Errorf("unexpected defaults: %v", c)
	}
}

func TestConfigGoodFile(t *testing.T) {
	c, err := loadConfig(t, "config_good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := Config{
		Listen:        "127.0.0.1:18080",
		BearerToken:   "test-token",
		HMACKey:       "test-hmac-key",
		ErrorRate:     0.05,
		Latency:       20 * time.Millisecond,
		LatencyJitter: 5 * time.Millisecond,
		ThrottleRate:  0.1,
		TimeoutRate:   0.1,
		TimeoutDelay:  3 * time.Second,
		RetryAfter:    2 * time.Second,
		Seed:          42,
	}
	if c != want {
		t.Errorf("got %#v\nwant %#v", c, want)
	}
}

func TestConfigPartialFileKeepsDefaults(t *testing.T) {
	c, err := loadConfig(t, "config_partial.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.ErrorRate, want.Seed = 0.5, 7
	if c != want {
		t.Errorf("got %v, want %v", c, want)
	}
}

func TestConfigMisspelledKeyRejected(t *testing.T) {
	_, err := loadConfig(t, "config_misspelled.yaml")
	if err == nil || !strings.Contains(err.Error(), "eror_rate") {
		t.Fatalf("got %v, want an error naming eror_rate", err)
	}
}

func TestConfigBadFileNamesEveryKey(t *testing.T) {
	c, err := loadConfig(t, "config_bad_values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("Validate accepted bad values")
	}
	for _, key := range []string{"listen", "bearer_token", "error_rate", "latency", "latency_jitter", "throttle_rate", "retry_after"} {
		if !strings.Contains(err.Error(), "sessionapi: "+key+":") {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	if strings.Contains(err.Error(), "a token with spaces") {
		t.Errorf("error leaks the bearer token: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(mutate func(*Config), wantKey string) {
		t.Helper()
		c := DefaultConfig()
		mutate(&c)
		err := c.Validate()
		if wantKey == "" {
			if err != nil {
				t.Errorf("unexpected error: %v", err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), "sessionapi: "+wantKey+":") {
			t.Errorf("got %v, want an error naming %s", err, wantKey)
		}
	}
	f(func(c *Config) {}, "")
	f(func(c *Config) { c.Listen = ":8080" }, "")
	f(func(c *Config) { c.Listen = "[::1]:0" }, "")
	f(func(c *Config) { c.ErrorRate, c.ThrottleRate = 1, 1 }, "")
	f(func(c *Config) { c.RetryAfter = 0 }, "")
	f(func(c *Config) { c.Listen = "" }, "listen")
	f(func(c *Config) { c.Listen = "127.0.0.1" }, "listen")
	f(func(c *Config) { c.Listen = "127.0.0.1:99999" }, "listen")
	f(func(c *Config) { c.BearerToken = "tab\there" }, "bearer_token")
	f(func(c *Config) { c.ErrorRate = -0.01 }, "error_rate")
	f(func(c *Config) { c.ErrorRate = math.NaN() }, "error_rate")
	f(func(c *Config) { c.ThrottleRate = 1.01 }, "throttle_rate")
	f(func(c *Config) { c.Latency = -time.Millisecond }, "latency")
	f(func(c *Config) { c.LatencyJitter = -time.Millisecond }, "latency_jitter")
	f(func(c *Config) { c.RetryAfter = -time.Second }, "retry_after")
}

func TestConfigRetryAfterSeconds(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := (Config{RetryAfter: d}).retryAfterSeconds(); got != want {
			t.Errorf("retry_after %s: got %q, want %q", d, got, want)
		}
	}
	f(0, "1")
	f(time.Millisecond, "1")
	f(time.Second, "1")
	f(1500*time.Millisecond, "2")
	f(2*time.Second, "2")
	f(time.Minute, "60")
}

func TestConfigStringRedactsSecrets(t *testing.T) {
	c := DefaultConfig()
	c.BearerToken, c.HMACKey = "tok-SECRET-1", "key-SECRET-2"
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(&c)} {
		if strings.Contains(s, "SECRET") {
			t.Errorf("secret in %q", s)
		}
		if !strings.Contains(s, "<redacted>") {
			t.Errorf("no redaction marker in %q", s)
		}
	}
}
