package detect

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
		if err == nil || !strings.Contains(err.Error(), "detect."+wantKey+":") {
			t.Errorf("got %v, want an error naming detect.%s", err, wantKey)
		}
	}
	f(func(c *Config) { c.StateTTL = 59 * time.Second }, "state_ttl")
	f(func(c *Config) { c.StateTTL = maxStateTTL + time.Millisecond }, "state_ttl")
	f(func(c *Config) { c.RebuildHorizon = -time.Second }, "rebuild_horizon")
	f(func(c *Config) { c.RebuildTimeout = 0 }, "rebuild_timeout")
	f(func(c *Config) { c.RebuildTimeout = 2 * time.Hour }, "rebuild_timeout")
	f(func(c *Config) { c.RebuildHorizon = c.StateTTL + time.Millisecond }, "rebuild_horizon")
	f(func(c *Config) { c.StateTTL, c.RebuildHorizon = 30*24*time.Hour, maxRebuildHorizon+time.Hour }, "rebuild_horizon")
	f(func(c *Config) { c.StateTTL = time.Hour }, "rebuild_horizon") // the default horizon, 24h, is now too long
	f(func(c *Config) { c.TokenReuse.Leeway = -time.Millisecond }, "token_reuse.leeway")
	f(func(c *Config) { c.TokenReuse.Leeway = time.Minute + time.Millisecond }, "token_reuse.leeway")
	f(func(c *Config) { c.TokenReuse.RealertAfter = -time.Second }, "token_reuse.realert_after")
	f(func(c *Config) { c.TokenReuse.RealertAfter = maxWindow + time.Second }, "token_reuse.realert_after")
	f(func(c *Config) { c.SessionHijack.Window = 999 * time.Millisecond }, "session_hijack.window")
	f(func(c *Config) { c.SessionHijack.Window = maxWindow + time.Second }, "session_hijack.window")
	f(func(c *Config) { c.SessionHijack.MaxTravelKMH = 0 }, "session_hijack.max_travel_kmh")
	f(func(c *Config) { c.SessionHijack.MaxTravelKMH = -1 }, "session_hijack.max_travel_kmh")
	f(func(c *Config) { c.SessionHijack.RealertAfter = -time.Second }, "session_hijack.realert_after")
	f(func(c *Config) { c.SessionHijack.RealertAfter = maxWindow + time.Second }, "session_hijack.realert_after")
	f(func(c *Config) { c.UseAfterRevocation.Grace = -time.Millisecond }, "use_after_revocation.grace")
	f(func(c *Config) { c.UseAfterRevocation.Grace = time.Hour + time.Millisecond }, "use_after_revocation.grace")
}

// TestConfigValidateBounds checks that every documented bound is inclusive.
func TestConfigValidateBounds(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"lowest": func(c *Config) {
			c.StateTTL, c.RebuildHorizon = time.Minute, 0
			c.TokenReuse.Leeway, c.TokenReuse.RealertAfter = 0, 0
			c.SessionHijack.Window, c.SessionHijack.MaxTravelKMH, c.SessionHijack.RealertAfter = time.Second, 0.001, 0
			c.UseAfterRevocation.Grace = 0
		},
		"highest": func(c *Config) {
			c.StateTTL, c.RebuildHorizon = maxStateTTL, maxRebuildHorizon
			c.TokenReuse.Leeway, c.TokenReuse.RealertAfter = time.Minute, maxWindow
			c.SessionHijack.Window, c.SessionHijack.MaxTravelKMH, c.SessionHijack.RealertAfter = maxWindow, 1e6, maxWindow
			c.UseAfterRevocation.Grace = time.Hour
		},
		"all detectors off": func(c *Config) {
			c.TokenReuse.Enabled, c.SessionHijack.Enabled, c.UseAfterRevocation.Enabled = false, false, false
		},
	} {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestConfigValidateReportsEverything checks that Validate reports every bad
// key at once, one error (line) each.
func TestConfigValidateReportsEverything(t *testing.T) {
	c := Config{
		StateTTL:           time.Second,
		RebuildHorizon:     -time.Second,
		TokenReuse:         TokenReuseConfig{Leeway: -1, RealertAfter: -1},
		SessionHijack:      SessionHijackConfig{Window: 0, MaxTravelKMH: 0, RealertAfter: -1},
		UseAfterRevocation: UseAfterRevocationConfig{Grace: -1},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"state_ttl", "rebuild_horizon", "rebuild_timeout", "token_reuse.leeway", "token_reuse.realert_after",
		"session_hijack.window", "session_hijack.max_travel_kmh", "session_hijack.realert_after",
		"use_after_revocation.grace",
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i, k := range want {
		if !strings.HasPrefix(got[i], "detect."+k+": ") {
			t.Errorf("error %d = %q, want it to name detect.%s", i, got[i], k)
		}
	}
}
