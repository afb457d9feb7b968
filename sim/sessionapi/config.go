package sessionapi

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Config tunes the simulated session service: where it listens, which
// credentials it demands and which failures it injects. Decode YAML into
// DefaultConfig() so that absent keys keep their defaults.
type Config struct {
	// Listen is the host:port to listen on; port 0 picks a free port.
	Listen string `yaml:"listen"`
	// BearerToken is the token `Authorization: Bearer` must carry; empty
	// disables the check. It is a secret: it never appears in errors.
	BearerToken string `yaml:"bearer_token"`
	// HMACKey signs request bodies (X-Vigil-Signature); empty disables the
	// check. It is a secret: it never appears in errors.
	HMACKey string `yaml:"hmac_key"`
	// ErrorRate is the fraction (0..1) of requests answered 503 without
	// revoking anything or consuming the idempotency key.
	ErrorRate float64 `yaml:"error_rate"`
	// Latency is added to every request before anything else happens.
	Latency time.Duration `yaml:"latency"`
	// LatencyJitter adds a uniformly distributed extra 0..LatencyJitter.
	LatencyJitter time.Duration `yaml:"latency_jitter"`
	// ThrottleRate is the fraction (0..1) of requests answered 429 with
	// Retry-After, without revoking anything or consuming the key.
	ThrottleRate float64 `yaml:"throttle_rate"`
	// TimeoutRate is the fraction (0..1) of requests that are processed (the
	// revocation applies, the key is consumed) but whose answer is held for
	// TimeoutDelay: the client times out not knowing it succeeded.
	TimeoutRate float64 `yaml:"timeout_rate"`
	// TimeoutDelay is how long a timed-out answer is held.
	TimeoutDelay time.Duration `yaml:"timeout_delay"`
	// RetryAfter is sent with 429s, rounded up to whole seconds, at least 1.
	RetryAfter time.Duration `yaml:"retry_after"`
	// Seed seeds the random source of injected failures and jitter, so they
	// are deterministic for a given request order.
	Seed uint64 `yaml:"seed"`
}

// DefaultConfig returns the documented defaults: listen on a free loopback
// port, no credentials, no injected failures or latency, Retry-After 1s.
func DefaultConfig() Config {
	return Config{
		Listen:       "127.0.0.1:0",
		RetryAfter:   time.Second,
		TimeoutDelay: 30 * time.Second,
	}
}

// Validate reports every bad value as errors.Join of one error per problem,
// each naming its key; secret values are never included.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("sessionapi: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "must be host:port (port 0 picks a free port), got %q", c.Listen)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil || strings.ContainsAny(host, " \t") {
		bad("listen", "must be host:port with a port between 0 and 65535, got %q", c.Listen)
	}
	if strings.IndexFunc(c.BearerToken, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		bad("bearer_token", "must not contain whitespace or control characters")
	}
	rate := func(key string, v float64) {
		if math.IsNaN(v) || v < 0 || v > 1 {
			bad(key, "must be between 0 and 1, got %g", v)
		}
	}
	rate("error_rate", c.ErrorRate)
	rate("throttle_rate", c.ThrottleRate)
	rate("timeout_rate", c.TimeoutRate)
	if c.TimeoutDelay < 0 {
		bad("timeout_delay", "must not be negative, got %s", c.TimeoutDelay)
	}
	if c.Latency < 0 {
		bad("latency", "must not be negative, got %s", c.Latency)
	}
	if c.LatencyJitter < 0 {
		bad("latency_jitter", "must not be negative, got %s", c.LatencyJitter)
	}
	if c.RetryAfter < 0 {
		bad("retry_after", "must not be negative, got %s", c.RetryAfter)
	}
	return errors.Join(errs...)
}

// String renders the config with the secrets redacted, so it is safe to log.
func (c Config) String() string {
	redact := func(s string) string {
		if s == "" {
			return `""`
		}
		return "<redacted>"
	}
	return fmt.Sprintf("{listen:%q bearer_token:%s hmac_key:%s error_rate:%g latency:%s latency_jitter:%s throttle_rate:%g timeout_rate:%g timeout_delay:%s retry_after:%s seed:%d}",
		c.Listen, redact(c.BearerToken), redact(c.HMACKey), c.ErrorRate, c.Latency, c.LatencyJitter, c.ThrottleRate, c.TimeoutRate, c.TimeoutDelay, c.RetryAfter, c.Seed)
}

// GoString is String, so that %#v does not print the secrets either.
func (c Config) GoString() string { return "sessionapi.Config" + c.String() }

// retryAfterSeconds is RetryAfter as the Retry-After header value: whole
// seconds, rounded up, at least 1.
func (c Config) retryAfterSeconds() string {
	s := int64((c.RetryAfter + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}
