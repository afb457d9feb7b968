package ingest

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	f := func(mutate func(*Config), wantKey string) {
		t.Helper()
		c := DefaultConfig()
		mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "ingest."+wantKey+":") {
			t.Errorf("got %v, want an error naming ingest.%s", err, wantKey)
		}
	}
	f(func(c *Config) { c.BatchSize = 0 }, "batch_size")
	f(func(c *Config) { c.FlushInterval = time.Millisecond }, "flush_interval")
	f(func(c *Config) { c.QueueSize = 0 }, "queue_size")
	f(func(c *Config) { c.MaxMessageBytes = 10 }, "max_message_bytes")
	f(func(c *Config) { c.MaxFutureSkew = -time.Second }, "max_future_skew")
	f(func(c *Config) { c.RetryInitial = 0 }, "retry_initial")
	f(func(c *Config) { c.RetryMax = time.Millisecond }, "retry_max")
	f(func(c *Config) { c.DrainTimeout = 0 }, "drain_timeout")
	f(func(c *Config) { c.LagInterval = time.Millisecond }, "lag_interval")
	f(func(c *Config) { c.StartOffset = "middle" }, "start_offset")
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	b := backoff{initial: 100 * time.Millisecond, max: time.Second}
	for i := range 40 {
		d := b.next()
		ceil := min(100*time.Millisecond<<min(i, 10), time.Second)
		if d < ceil/2 || d > ceil {
			t.Fatalf("attempt %d: %s outside [%s, %s]", i, d, ceil/2, ceil)
		}
	}
}

func TestPermanent(t *testing.T) {
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	err := Permanent(errTest)
	if !IsPermanent(err) || IsPermanent(errTest) {
		t.Error("IsPermanent misclassifies")
	}
}

var errTest = &testErr{}

type testErr struct{}

func (*testErr) Error() string { return "test" }
