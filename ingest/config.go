package ingest

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes the ingest pipeline: batching, buffering, retries and drain.
// It is the `ingest:` section of the vigil config file.
type Config struct {
	// BatchSize is the number of events per ClickHouse insert at most.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest an event waits in a partial batch.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// BatchBytes flushes a batch once its messages total this many bytes.
	BatchBytes int `yaml:"batch_bytes"`
	// QueueSize bounds the messages buffered per partition between fetch and decode.
	QueueSize int `yaml:"queue_size"`
	// MaxMessageBytes rejects larger messages with reason too_large.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxFutureSkew rejects events whose time is later than now plus this, with reason time_in_future.
	MaxFutureSkew time.Duration `yaml:"max_future_skew"`
	// RetryInitial is the first backoff after a failed ClickHouse insert or DLQ write.
	RetryInitial time.Duration `yaml:"retry_initial"`
	// RetryMax caps the jittered exponential backoff.
	RetryMax time.Duration `yaml:"retry_max"`
	// DrainTimeout bounds the flush of buffered events on shutdown or rebalance.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// LagInterval is how often per-partition lag is computed from the group's committed offsets.
	LagInterval time.Duration `yaml:"lag_interval"`
	// StartOffset is where a partition with no committed offset starts: earliest or latest.
	StartOffset string `yaml:"start_offset"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		BatchSize:       50000,
		FlushInterval:   time.Second,
		BatchBytes:      32 << 20,
		QueueSize:       10000,
		MaxMessageBytes: 64 << 10,
		MaxFutureSkew:   5 * time.Minute,
		RetryInitial:    100 * time.Millisecond,
		RetryMax:        10 * time.Second,
		DrainTimeout:    10 * time.Second,
		LagInterval:     5 * time.Second,
		StartOffset:     "earliest",
	}
}

// Validate reports every bad value, each error naming its key under `ingest.`.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ingest.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.BatchSize < 1 || c.BatchSize > 1_000_000 {
		bad("batch_size", "must be between 1 and 1000000, got %d", c.BatchSize)
	}
	if c.FlushInterval < 10*time.Millisecond {
		bad("flush_interval", "must be at least 10ms, got %s", c.FlushInterval)
	}
	if c.BatchBytes < 1<<20 {
		bad("batch_bytes", "must be at least 1048576, got %d", c.BatchBytes)
	}
	if c.QueueSize < 1 {
		bad("queue_size", "must be at least 1, got %d", c.QueueSize)
	}
	if c.MaxMessageBytes < 256 || c.MaxMessageBytes > 16<<20 {
		bad("max_message_bytes", "must be between 256 and 16777216, got %d", c.MaxMessageBytes)
	}
	if c.MaxFutureSkew < 0 {
		bad("max_future_skew", "must not be negative, got %s", c.MaxFutureSkew)
	}
	if c.RetryInitial <= 0 {
		bad("retry_initial", "must be positive, got %s", c.RetryInitial)
	}
	if c.RetryMax < c.RetryInitial {
		bad("retry_max", "must be at least retry_initial (%s), got %s", c.RetryInitial, c.RetryMax)
	}
	if c.DrainTimeout <= 0 {
		bad("drain_timeout", "must be positive, got %s", c.DrainTimeout)
	}
	if c.LagInterval < 100*time.Millisecond {
		bad("lag_interval", "must be at least 100ms, got %s", c.LagInterval)
	}
	if c.StartOffset != "earliest" && c.StartOffset != "latest" {
		bad("start_offset", "must be earliest or latest, got %q", c.StartOffset)
	}
	return errors.Join(errs...)
}
