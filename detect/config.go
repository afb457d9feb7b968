package detect

import (
	"errors"
	"fmt"
	"time"
)

// Config is the `detect:` section of the vigil config file: the stream
// and window detectors' switches, thresholds and state limits. docs/detectors.md
// explains each key and how to tune it.
type Config struct {
	// StateTTL forgets a family after this long without events; set it to
	// the session service's refresh-token inactivity lifetime.
	StateTTL time.Duration `yaml:"state_ttl"`
	// RebuildHorizon is how far back the state of a newly assigned
	// partition is rebuilt from ClickHouse; 0 turns the rebuild off.
	RebuildHorizon time.Duration `yaml:"rebuild_horizon"`
	// RebuildTimeout bounds the retries of a failing rebuild; past it the
	// partition is consumed with empty state (and an error is logged and
	// counted) rather than not at all.
	RebuildTimeout time.Duration `yaml:"rebuild_timeout"`
	// TokenReuse configures the token_reuse detector.
	TokenReuse TokenReuseConfig `yaml:"token_reuse"`
	// SessionHijack configures the session_hijack detector.
	SessionHijack SessionHijackConfig `yaml:"session_hijack"`
	// UseAfterRevocation configures the use_after_revocation detector.
	UseAfterRevocation UseAfterRevocationConfig `yaml:"use_after_revocation"`
	// Window configures the window detectors' schedule, watermark, allowlists and baselines.
	Window WindowConfig `yaml:"window"`
	// LoginStorm configures the login_storm window detector.
	LoginStorm LoginStormConfig `yaml:"login_storm"`
	// SessionChurn configures the session_churn window detector.
	SessionChurn SessionChurnConfig `yaml:"session_churn"`
}

// TokenReuseConfig tunes token_reuse.
type TokenReuseConfig struct {
	// Enabled turns the detector on.
	Enabled bool `yaml:"enabled"`
	// Shadow records its anomalies marked shadow: nothing acts on them.
	Shadow bool `yaml:"shadow"`
	// Leeway forgives a second exchange of the newest token from the same
	// client within this long of the first (two tabs, a retried request).
	Leeway time.Duration `yaml:"leeway"`
	// RealertAfter is how long further replays in the same family are
	// counted but not raised again.
	RealertAfter time.Duration `yaml:"realert_after"`
}

// SessionHijackConfig tunes session_hijack.
type SessionHijackConfig struct {
	// Enabled turns the detector on.
	Enabled bool `yaml:"enabled"`
	// Shadow records its anomalies marked shadow: nothing acts on them.
	Shadow bool `yaml:"shadow"`
	// Window is how close in time uses from two different clients must be to count as concurrent.
	Window time.Duration `yaml:"window"`
	// MaxTravelKMH is the fastest plausible travel between two countries; faster is impossible travel (severity high).
	MaxTravelKMH float64 `yaml:"max_travel_kmh"`
	// RealertAfter is how long further client switches in the same family are counted but not raised again.
	RealertAfter time.Duration `yaml:"realert_after"`
}

// UseAfterRevocationConfig tunes use_after_revocation.
type UseAfterRevocationConfig struct {
	// Enabled turns the detector on.
	Enabled bool `yaml:"enabled"`
	// Shadow records its anomalies marked shadow: nothing acts on them.
	Shadow bool `yaml:"shadow"`
	// Grace is how long after a revocation a successful use is still put down to propagation.
	Grace time.Duration `yaml:"grace"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		StateTTL:       24 * time.Hour,
		RebuildHorizon: 24 * time.Hour,
		RebuildTimeout: 2 * time.Minute,
		TokenReuse:     TokenReuseConfig{Enabled: true, Leeway: 3 * time.Second, RealertAfter: 10 * time.Minute},
		SessionHijack: SessionHijackConfig{
			Enabled: true, Window: 10 * time.Minute, MaxTravelKMH: 1000, RealertAfter: 30 * time.Minute,
		},
		UseAfterRevocation: UseAfterRevocationConfig{Enabled: true, Grace: 5 * time.Second},
		Window:             defaultWindowConfig(),
		LoginStorm:         defaultLoginStorm(),
		SessionChurn:       defaultSessionChurn(),
	}
}

// Bounds of the state's clock: times are kept as milliseconds in 31 bits,
// and a rebuild must not reach back further than the state keeps exact
// times (keepAfterRebase, about 12.4 days).
const (
	maxStateTTL       = 180 * 24 * time.Hour
	maxWindow         = 24 * time.Hour
	maxRebuildHorizon = 12 * 24 * time.Hour
)

// Validate reports every bad value, each error naming its key under `detect.`.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("detect.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.StateTTL < time.Minute || c.StateTTL > maxStateTTL {
		bad("state_ttl", "must be between 1m and %s, got %s", maxStateTTL, c.StateTTL)
	}
	if c.RebuildHorizon < 0 || c.RebuildHorizon > c.StateTTL || c.RebuildHorizon > maxRebuildHorizon {
		bad("rebuild_horizon", "must be between 0 and state_ttl (%s), at most %s, got %s", c.StateTTL, maxRebuildHorizon, c.RebuildHorizon)
	}
	if c.RebuildTimeout < time.Second || c.RebuildTimeout > time.Hour {
		bad("rebuild_timeout", "must be between 1s and 1h, got %s", c.RebuildTimeout)
	}
	if c.TokenReuse.Leeway < 0 || c.TokenReuse.Leeway > time.Minute {
		bad("token_reuse.leeway", "must be between 0s and 1m, got %s", c.TokenReuse.Leeway)
	}
	if c.TokenReuse.RealertAfter < 0 || c.TokenReuse.RealertAfter > maxWindow {
		bad("token_reuse.realert_after", "must be between 0s and %s, got %s", maxWindow, c.TokenReuse.RealertAfter)
	}
	if c.SessionHijack.Window < time.Second || c.SessionHijack.Window > maxWindow {
		bad("session_hijack.window", "must be between 1s and %s, got %s", maxWindow, c.SessionHijack.Window)
	}
	if c.SessionHijack.MaxTravelKMH <= 0 {
		bad("session_hijack.max_travel_kmh", "must be positive, got %g", c.SessionHijack.MaxTravelKMH)
	}
	if c.SessionHijack.RealertAfter < 0 || c.SessionHijack.RealertAfter > maxWindow {
		bad("session_hijack.realert_after", "must be between 0s and %s, got %s", maxWindow, c.SessionHijack.RealertAfter)
	}
	if c.UseAfterRevocation.Grace < 0 || c.UseAfterRevocation.Grace > time.Hour {
		bad("use_after_revocation.grace", "must be between 0s and 1h, got %s", c.UseAfterRevocation.Grace)
	}
	c.validateWindows(bad)
	return errors.Join(errs...)
}
