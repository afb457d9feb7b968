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
	f(func(c *Config) { c.Window.Interval = 0 }, "window.interval")
	f(func(c *Config) { c.Window.Interval = 2 * time.Minute }, "window.interval")
	f(func(c *Config) { c.Window.Lateness = -time.Second }, "window.lateness")
	f(func(c *Config) { c.Window.IdleAfter = 0 }, "window.idle_after")
	f(func(c *Config) { c.Window.CatchUp = 25 * time.Hour }, "window.catch_up")
	f(func(c *Config) { c.Window.RealertAfter = -time.Second }, "window.realert_after")
	f(func(c *Config) { c.Window.AllowCIDRs = []string{"10.0.0.0/8", "bad"} }, "window.allow_cidrs[1]")
	f(func(c *Config) { c.Window.AllowCIDRs = []string{"2001:db8::/33"} }, "window.allow_cidrs[0]")
	f(func(c *Config) { c.Window.AllowUsers = []string{""} }, "window.allow_users[0]")
	f(func(c *Config) { c.Window.Baseline.Recent = -time.Second }, "window.baseline.recent")
	f(func(c *Config) { c.Window.Baseline.Days = 29 }, "window.baseline.days")
	f(func(c *Config) { c.Window.Baseline.MinSamples = 0 }, "window.baseline.min_samples")
	f(func(c *Config) { c.Window.Baseline.MADs = -1 }, "window.baseline.mads")
	f(func(c *Config) { c.Window.Baseline.MinRatio = 0.9 }, "window.baseline.min_ratio")
	f(func(c *Config) { c.LoginStorm.Stuffing.Window = 7 * time.Second }, "login_storm.stuffing.window")
	f(func(c *Config) { c.LoginStorm.Stuffing.Window = 2 * time.Hour }, "login_storm.stuffing.window")
	f(func(c *Config) { c.LoginStorm.Stuffing.MinTargets = 1 }, "login_storm.stuffing.min_targets")
	f(func(c *Config) { c.LoginStorm.Stuffing.MinFailureRatio = 1.1 }, "login_storm.stuffing.min_failure_ratio")
	f(func(c *Config) { c.LoginStorm.Stuffing.MaxAttemptsPerTarget = 0.5 }, "login_storm.stuffing.max_attempts_per_target")
	f(func(c *Config) { c.LoginStorm.Distributed.MinTargets = 0 }, "login_storm.distributed.min_targets")
	f(func(c *Config) { c.LoginStorm.Distributed.MinFailures = 0 }, "login_storm.distributed.min_failures")
	f(func(c *Config) { c.LoginStorm.Distributed.MinFailureRatio = 0 }, "login_storm.distributed.min_failure_ratio")
	f(func(c *Config) { c.LoginStorm.BruteForce.MinFailures = 0 }, "login_storm.brute_force.min_failures")
	f(func(c *Config) { c.LoginStorm.BruteForce.MinSources = 0 }, "login_storm.brute_force.min_sources")
	f(func(c *Config) { c.LoginStorm.Reconnect.MinLogins = 0 }, "login_storm.reconnect.min_logins")
	f(func(c *Config) { c.LoginStorm.Reconnect.Lookback = 30 * time.Second }, "login_storm.reconnect.lookback")
	f(func(c *Config) { c.SessionChurn.EndBurst.MinEnds = 0 }, "session_churn.end_burst.min_ends")
	f(func(c *Config) { c.SessionChurn.ShortSessions.MaxLifetime = 2 * time.Hour }, "session_churn.short_sessions.max_lifetime")
	f(func(c *Config) { c.SessionChurn.ShortSessions.MinSessions = 0 }, "session_churn.short_sessions.min_sessions")
	f(func(c *Config) { c.SessionChurn.SessionFlood.Window = 0 }, "session_churn.session_flood.window")
	f(func(c *Config) { c.SessionChurn.SessionFlood.MinSessions = 1 }, "session_churn.session_flood.min_sessions")
	f(func(c *Config) { c.SessionChurn.RefreshLoop.MinRefreshes = 1 }, "session_churn.refresh_loop.min_refreshes")
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
		Window:             defaultWindowConfig(),
		LoginStorm:         defaultLoginStorm(),
		SessionChurn:       defaultSessionChurn(),
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
