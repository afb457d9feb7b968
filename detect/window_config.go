package detect

import (
	"fmt"
	"net/netip"
	"time"
)

// WindowConfig is the `detect.window:` section: the schedule, watermark,
// re-alerting, allowlists and baselines shared by the window detectors
// (login_storm, session_churn).
type WindowConfig struct {
	// Interval is the evaluation period and the grid every window ends on.
	Interval time.Duration `yaml:"interval"`
	// Lateness is how far behind the slowest partition's newest event a
	// window must end before it is judged complete.
	Lateness time.Duration `yaml:"lateness"`
	// IdleAfter leaves out of the watermark a partition whose newest
	// event has not advanced for this long (wall clock).
	IdleAfter time.Duration `yaml:"idle_after"`
	// CatchUp is how far before the first watermark a newly started (or
	// newly elected) runner begins judging windows.
	CatchUp time.Duration `yaml:"catch_up"`
	// RealertAfter ends a subject's episode after this long (event time)
	// without firing; until then further firings are not raised again.
	RealertAfter time.Duration `yaml:"realert_after"`
	// AllowCIDRs are sources never judged (NAT'd offices, monitors).
	AllowCIDRs []string `yaml:"allow_cidrs"`
	// AllowUsers are user ids never judged (synthetic monitors, load tests).
	AllowUsers []string `yaml:"allow_users"`
	// Baseline configures the robust baselines of the fleet-wide series.
	Baseline BaselineConfig `yaml:"baseline"`
}

// BaselineConfig tunes the median/MAD baselines of fleet-wide series.
type BaselineConfig struct {
	// Recent is how much history right before a window feeds its baseline.
	Recent time.Duration `yaml:"recent"`
	// Days adds the same hour (±30 min) of this many earlier days.
	Days int `yaml:"days"`
	// MinSamples is the fewest past buckets a baseline needs; with fewer,
	// only the absolute floors apply.
	MinSamples int `yaml:"min_samples"`
	// MADs is how many scaled median absolute deviations above the median a value must be.
	MADs float64 `yaml:"mads"`
	// MinRatio is how many times the median a value must also be.
	MinRatio float64 `yaml:"min_ratio"`
}

// LoginStormConfig tunes login_storm.
type LoginStormConfig struct {
	// Enabled turns the detector on.
	Enabled bool `yaml:"enabled"`
	// Shadow records its anomalies marked shadow: nothing acts on them.
	Shadow bool `yaml:"shadow"`
	// Stuffing is one source trying many accounts.
	Stuffing StuffingConfig `yaml:"stuffing"`
	// Distributed is stuffing or spraying spread over many sources.
	Distributed DistributedConfig `yaml:"distributed"`
	// BruteForce is one account tried from many sources.
	BruteForce BruteForceConfig `yaml:"brute_force"`
	// Reconnect is a surge of re-logins after sessions were lost.
	Reconnect ReconnectConfig `yaml:"reconnect"`
}

// StuffingConfig tunes the one-source credential stuffing rule.
type StuffingConfig struct {
	// Window is the sliding window length.
	Window time.Duration `yaml:"window"`
	// MinTargets is the fewest distinct accounts one source must try.
	MinTargets int `yaml:"min_targets"`
	// MinFailureRatio is the smallest share of its attempts that must fail.
	MinFailureRatio float64 `yaml:"min_failure_ratio"`
	// MaxAttemptsPerTarget is the most attempts per account (stuffing tries few each).
	MaxAttemptsPerTarget float64 `yaml:"max_attempts_per_target"`
}

// DistributedConfig tunes the many-source stuffing and spraying rule.
type DistributedConfig struct {
	// Window is the sliding window length.
	Window time.Duration `yaml:"window"`
	// MinSources is the fewest hostile sources (each failing on two or more accounts).
	MinSources int `yaml:"min_sources"`
	// MinTargets is the fewest distinct accounts they try together.
	MinTargets int `yaml:"min_targets"`
	// MinFailures is the fewest failed attempts they make together.
	MinFailures int `yaml:"min_failures"`
	// MinFailureRatio is the smallest share of a source's attempts that must fail for it to count as hostile.
	MinFailureRatio float64 `yaml:"min_failure_ratio"`
}

// BruteForceConfig tunes the one-account, many-source rule.
type BruteForceConfig struct {
	// Window is the sliding window length.
	Window time.Duration `yaml:"window"`
	// MinFailures is the fewest failed attempts on the account.
	MinFailures int `yaml:"min_failures"`
	// MinSources is the fewest distinct source addresses.
	MinSources int `yaml:"min_sources"`
}

// ReconnectConfig tunes the reconnect storm rule.
type ReconnectConfig struct {
	// Window is the sliding window length (and the baseline's bucket).
	Window time.Duration `yaml:"window"`
	// MinLogins is the fewest re-logins in a window (the absolute floor).
	MinLogins int `yaml:"min_logins"`
	// Lookback is how long before a login its device's session must have been lost.
	Lookback time.Duration `yaml:"lookback"`
	// RoutineEndReasons are session-end reasons that are not a loss (a re-login after them is ordinary).
	RoutineEndReasons []string `yaml:"routine_end_reasons"`
}

// SessionChurnConfig tunes session_churn.
type SessionChurnConfig struct {
	// Enabled turns the detector on.
	Enabled bool `yaml:"enabled"`
	// Shadow records its anomalies marked shadow: nothing acts on them.
	Shadow bool `yaml:"shadow"`
	// EndBurst is a burst of expiries and revocations (a bad key rotation).
	EndBurst EndBurstConfig `yaml:"end_burst"`
	// ShortSessions is a surge in sessions that end within seconds.
	ShortSessions ShortSessionsConfig `yaml:"short_sessions"`
	// SessionFlood is one user creating many sessions.
	SessionFlood SessionFloodConfig `yaml:"session_flood"`
	// RefreshLoop is one family refreshing far more often than its token lifetime allows.
	RefreshLoop RefreshLoopConfig `yaml:"refresh_loop"`
}

// EndBurstConfig tunes the end-burst rule.
type EndBurstConfig struct {
	// Window is the sliding window length (and the baseline's bucket).
	Window time.Duration `yaml:"window"`
	// MinEnds is the fewest expiries and revocations in a window (the absolute floor).
	MinEnds int `yaml:"min_ends"`
}

// ShortSessionsConfig tunes the short-lived sessions rule.
type ShortSessionsConfig struct {
	// Window is the sliding window length.
	Window time.Duration `yaml:"window"`
	// MaxLifetime is how long a session may live and still count as short.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// MinSessions is the fewest short sessions in a window.
	MinSessions int `yaml:"min_sessions"`
	// MinShare is the smallest share of the window's ended sessions that are short.
	MinShare float64 `yaml:"min_share"`
}

// SessionFloodConfig tunes the one-user session flood rule.
type SessionFloodConfig struct {
	// Window is the sliding window length.
	Window time.Duration `yaml:"window"`
	// MinSessions is the fewest sessions one user creates in a window.
	MinSessions int `yaml:"min_sessions"`
}

// RefreshLoopConfig tunes the refresh loop rule.
type RefreshLoopConfig struct {
	// Window is the sliding window length.
	Window time.Duration `yaml:"window"`
	// MinRefreshes is the fewest refreshes of one family in a window.
	MinRefreshes int `yaml:"min_refreshes"`
}

func defaultWindowConfig() WindowConfig {
	return WindowConfig{
		Interval: 5 * time.Second, Lateness: 5 * time.Second, IdleAfter: 30 * time.Second,
		CatchUp: 15 * time.Minute, RealertAfter: time.Minute,
		AllowCIDRs: []string{}, AllowUsers: []string{},
		Baseline: BaselineConfig{Recent: time.Hour, Days: 7, MinSamples: 10, MADs: 6, MinRatio: 3},
	}
}

func defaultLoginStorm() LoginStormConfig {
	return LoginStormConfig{
		Enabled:     true,
		Stuffing:    StuffingConfig{Window: 2 * time.Minute, MinTargets: 30, MinFailureRatio: 0.8, MaxAttemptsPerTarget: 3},
		Distributed: DistributedConfig{Window: 2 * time.Minute, MinSources: 5, MinTargets: 20, MinFailures: 30, MinFailureRatio: 0.8},
		BruteForce:  BruteForceConfig{Window: 2 * time.Minute, MinFailures: 20, MinSources: 5},
		Reconnect: ReconnectConfig{Window: time.Minute, MinLogins: 20, Lookback: 5 * time.Minute,
			RoutineEndReasons: []string{"logout", "idle_timeout", "expired"}},
	}
}

func defaultSessionChurn() SessionChurnConfig {
	return SessionChurnConfig{
		Enabled:       true,
		EndBurst:      EndBurstConfig{Window: time.Minute, MinEnds: 50},
		ShortSessions: ShortSessionsConfig{Window: 5 * time.Minute, MaxLifetime: time.Minute, MinSessions: 30, MinShare: 0.5},
		SessionFlood:  SessionFloodConfig{Window: 10 * time.Minute, MinSessions: 20},
		RefreshLoop:   RefreshLoopConfig{Window: 5 * time.Minute, MinRefreshes: 30},
	}
}

// maxRuleWindow bounds every window detector's window.
const maxRuleWindow = time.Hour

// validateWindows appends the window detectors' errors via bad.
func (c Config) validateWindows(bad func(key, format string, args ...any)) {
	w := c.Window
	if w.Interval < time.Second || w.Interval > time.Minute || w.Interval%time.Second != 0 {
		bad("window.interval", "must be whole seconds between 1s and 1m, got %s", w.Interval)
	}
	if w.Lateness < 0 || w.Lateness > 10*time.Minute {
		bad("window.lateness", "must be between 0s and 10m, got %s", w.Lateness)
	}
	if w.IdleAfter < time.Second || w.IdleAfter > time.Hour {
		bad("window.idle_after", "must be between 1s and 1h, got %s", w.IdleAfter)
	}
	if w.CatchUp < 0 || w.CatchUp > 24*time.Hour {
		bad("window.catch_up", "must be between 0s and 24h, got %s", w.CatchUp)
	}
	if w.RealertAfter < 0 || w.RealertAfter > maxWindow {
		bad("window.realert_after", "must be between 0s and %s, got %s", maxWindow, w.RealertAfter)
	}
	for i, s := range w.AllowCIDRs {
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			bad(fmt.Sprintf("window.allow_cidrs[%d]", i), "not a CIDR prefix: %q", s)
		case p.Addr().Is6() && p.Bits()%8 != 0:
			bad(fmt.Sprintf("window.allow_cidrs[%d]", i), "IPv6 prefix length must be a multiple of 8, got %d", p.Bits())
		}
	}
	for i, u := range w.AllowUsers {
		if u == "" {
			bad(fmt.Sprintf("window.allow_users[%d]", i), "must not be empty")
		}
	}
	b := w.Baseline
	if b.Recent < 0 || b.Recent > 24*time.Hour {
		bad("window.baseline.recent", "must be between 0s and 24h, got %s", b.Recent)
	}
	if b.Days < 0 || b.Days > 28 {
		bad("window.baseline.days", "must be between 0 and 28, got %d", b.Days)
	}
	if b.MinSamples < 1 {
		bad("window.baseline.min_samples", "must be at least 1, got %d", b.MinSamples)
	}
	if b.MADs < 0 {
		bad("window.baseline.mads", "must not be negative, got %g", b.MADs)
	}
	if b.MinRatio < 1 {
		bad("window.baseline.min_ratio", "must be at least 1, got %g", b.MinRatio)
	}
	win := func(key string, d time.Duration) {
		if d < w.Interval || d > maxRuleWindow || (w.Interval > 0 && d%w.Interval != 0) {
			bad(key, "must be a multiple of window.interval (%s) up to %s, got %s", w.Interval, maxRuleWindow, d)
		}
	}
	atLeast := func(key string, v, min int) {
		if v < min {
			bad(key, "must be at least %d, got %d", min, v)
		}
	}
	ratio := func(key string, v float64) {
		if !(v > 0 && v <= 1) {
			bad(key, "must be in (0, 1], got %g", v)
		}
	}
	ls := c.LoginStorm
	win("login_storm.stuffing.window", ls.Stuffing.Window)
	atLeast("login_storm.stuffing.min_targets", ls.Stuffing.MinTargets, 2)
	ratio("login_storm.stuffing.min_failure_ratio", ls.Stuffing.MinFailureRatio)
	if ls.Stuffing.MaxAttemptsPerTarget < 1 {
		bad("login_storm.stuffing.max_attempts_per_target", "must be at least 1, got %g", ls.Stuffing.MaxAttemptsPerTarget)
	}
	win("login_storm.distributed.window", ls.Distributed.Window)
	atLeast("login_storm.distributed.min_sources", ls.Distributed.MinSources, 2)
	atLeast("login_storm.distributed.min_targets", ls.Distributed.MinTargets, 2)
	atLeast("login_storm.distributed.min_failures", ls.Distributed.MinFailures, 1)
	ratio("login_storm.distributed.min_failure_ratio", ls.Distributed.MinFailureRatio)
	win("login_storm.brute_force.window", ls.BruteForce.Window)
	atLeast("login_storm.brute_force.min_failures", ls.BruteForce.MinFailures, 1)
	atLeast("login_storm.brute_force.min_sources", ls.BruteForce.MinSources, 1)
	win("login_storm.reconnect.window", ls.Reconnect.Window)
	atLeast("login_storm.reconnect.min_logins", ls.Reconnect.MinLogins, 1)
	if ls.Reconnect.Lookback < time.Minute || ls.Reconnect.Lookback > 24*time.Hour {
		bad("login_storm.reconnect.lookback", "must be between 1m and 24h, got %s", ls.Reconnect.Lookback)
	}
	sc := c.SessionChurn
	win("session_churn.end_burst.window", sc.EndBurst.Window)
	atLeast("session_churn.end_burst.min_ends", sc.EndBurst.MinEnds, 1)
	win("session_churn.short_sessions.window", sc.ShortSessions.Window)
	if sc.ShortSessions.MaxLifetime < time.Second || sc.ShortSessions.MaxLifetime > time.Hour {
		bad("session_churn.short_sessions.max_lifetime", "must be between 1s and 1h, got %s", sc.ShortSessions.MaxLifetime)
	}
	atLeast("session_churn.short_sessions.min_sessions", sc.ShortSessions.MinSessions, 1)
	ratio("session_churn.short_sessions.min_share", sc.ShortSessions.MinShare)
	win("session_churn.session_flood.window", sc.SessionFlood.Window)
	atLeast("session_churn.session_flood.min_sessions", sc.SessionFlood.MinSessions, 2)
	win("session_churn.refresh_loop.window", sc.RefreshLoop.Window)
	atLeast("session_churn.refresh_loop.min_refreshes", sc.RefreshLoop.MinRefreshes, 2)
}
