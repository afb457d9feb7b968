package sim

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Config describes the simulated session service and its users. The zero
// value of every field means its default (see Defaults).
type Config struct {
	// Seed makes the run reproducible: the same seed, start and config give
	// the same event stream (as long as no revocation arrives).
	Seed uint64 `yaml:"seed"`
	// Users is the number of simulated users; each has 1–3 devices.
	Users int `yaml:"users"`
	// Tenants spreads users over this many tenants ("tenant-01"…); 1 means
	// the single default tenant "".
	Tenants int `yaml:"tenants"`
	// Rate is the target background event rate, in events per second of
	// event time, at load 1 (the load curve scales it).
	Rate float64 `yaml:"rate"`
	// Start is the event time of the first event; zero means now.
	Start time.Time `yaml:"start"`
	// Duration is how much event time to simulate; zero means until the
	// caller stops reading.
	Duration time.Duration `yaml:"duration"`
	// LoadCurve applies the diurnal and weekly curve (UTC hours); off, the
	// load stays at 1.
	LoadCurve bool `yaml:"load_curve"`
	// SampleRate, above 1, emits only one in SampleRate session.validated
	// events, each carrying sample_rate so SLIs can weight it back.
	SampleRate int `yaml:"sample_rate"`
	// RefreshInterval is the access-token lifetime: a client in use
	// exchanges its refresh token this often.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// IdleTimeout ends a session nobody used for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AbsoluteLifetime ends any session this long after its login.
	AbsoluteLifetime time.Duration `yaml:"absolute_lifetime"`
	// Scenarios to run, with their start offsets; see Scenarios for names.
	Scenarios []ScenarioSpec `yaml:"scenarios"`
	// Source is the events' source field.
	Source string `yaml:"source"`
}

// ScenarioSpec schedules one scenario.
type ScenarioSpec struct {
	Name     string        `yaml:"name"`     // one of ScenarioNames()
	At       time.Duration `yaml:"at"`       // event-time offset from Config.Start
	Duration time.Duration `yaml:"duration"` // 0 means the scenario's default length
	// Count is how many instances (victims, sessions) the scenario creates;
	// 0 means its default.
	Count int `yaml:"count"`
}

// Defaults returns c with every zero field set to its default.
func (c Config) Defaults() Config {
	if c.Users == 0 {
		c.Users = 10000
	}
	if c.Tenants == 0 {
		c.Tenants = 1
	}
	if c.Rate == 0 {
		c.Rate = 1000
	}
	if c.SampleRate == 0 {
		c.SampleRate = 1
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = 5 * time.Minute
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.AbsoluteLifetime == 0 {
		c.AbsoluteLifetime = 12 * time.Hour
	}
	if c.Source == "" {
		c.Source = "sim"
	}
	return c
}

// Validate reports every invalid setting, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Users < 1 || c.Users > 50_000_000 {
		bad("users", "must be between 1 and 50000000, got %d", c.Users)
	}
	if c.Tenants < 1 || c.Tenants > c.Users {
		bad("tenants", "must be between 1 and users (%d), got %d", c.Users, c.Tenants)
	}
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		bad("rate", "must be a positive number of events per second, got %v", c.Rate)
	}
	if c.Duration < 0 {
		bad("duration", "must not be negative, got %s", c.Duration)
	}
	if c.SampleRate < 1 {
		bad("sample_rate", "must be at least 1, got %d", c.SampleRate)
	}
	if c.RefreshInterval < time.Second {
		bad("refresh_interval", "must be at least 1s, got %s", c.RefreshInterval)
	}
	if c.IdleTimeout <= c.RefreshInterval {
		bad("idle_timeout", "must be longer than refresh_interval (%s), got %s", c.RefreshInterval, c.IdleTimeout)
	}
	if c.AbsoluteLifetime <= c.IdleTimeout {
		bad("absolute_lifetime", "must be longer than idle_timeout (%s), got %s", c.IdleTimeout, c.AbsoluteLifetime)
	}
	for i, s := range c.Scenarios {
		key := fmt.Sprintf("scenarios[%d]", i)
		if _, ok := scenarioByName[s.Name]; !ok {
			bad(key+".name", "unknown scenario %q (known: %s)", s.Name, strings.Join(ScenarioNames(), ", "))
		}
		if s.At < 0 || s.Duration < 0 || s.Count < 0 {
			bad(key, "at, duration and count must not be negative")
		}
		if c.Duration > 0 && s.At >= c.Duration {
			bad(key+".at", "%s is not before the end of the run (%s)", s.At, c.Duration)
		}
	}
	return errors.Join(errs...)
}

// Spread schedules the named scenarios one after another across a run of
// length d: scenario i of n starts at d·(i+1)/(n+2), leaving normal traffic
// before the first and after the last, and lasts at most until the next one
// starts (or its own default, if shorter). Unknown names are an error that
// lists the known ones.
func Spread(names []string, d time.Duration) ([]ScenarioSpec, error) {
	var specs []ScenarioSpec
	n := len(names)
	for i, name := range names {
		sc, ok := scenarioByName[name]
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(ScenarioNames(), ", "))
		}
		at := time.Duration(float64(d) * float64(i+1) / float64(n+2))
		slot := time.Duration(float64(d) / float64(n+2))
		dur := min(sc.duration, slot)
		specs = append(specs, ScenarioSpec{Name: name, At: at.Truncate(time.Millisecond), Duration: dur.Truncate(time.Millisecond)})
	}
	return specs, nil
}

// ScenarioNames lists every scenario, sorted.
func ScenarioNames() []string {
	var out []string
	for name := range scenarioByName {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
