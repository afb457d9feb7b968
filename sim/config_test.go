package sim

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestConfigValidate: each bad value is an error naming its key, from
// Validate and from New; the defaults are valid.
func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Defaults().Validate(); err != nil {
		t.Fatalf("defaults are invalid: %v", err)
	}
	f := func(key string, mutate func(c *Config), more ...string) {
		t.Run(key, func(t *testing.T) {
			c := Config{Start: testStart, Duration: 10 * time.Minute}
			mutate(&c)
			c = c.Defaults()
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error naming %s", c, key)
			}
			for _, want := range append([]string{key + ":"}, more...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate error %q does not contain %q", err, want)
				}
			}
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), key+":") {
				t.Errorf("New = %v, want the error naming %s", err, key)
			}
		})
	}
	f("users", func(c *Config) { c.Users = -1 })
	f("users", func(c *Config) { c.Users = 50_000_001 })
	f("tenants", func(c *Config) { c.Tenants = -2 })
	f("tenants", func(c *Config) { c.Users, c.Tenants = 5, 6 })
	f("rate", func(c *Config) { c.Rate = -1 })
	f("rate", func(c *Config) { c.Rate = math.NaN() })
	f("rate", func(c *Config) { c.Rate = math.Inf(1) })
	f("duration", func(c *Config) { c.Duration = -time.Second })
	f("sample_rate", func(c *Config) { c.SampleRate = -1 })
	f("refresh_interval", func(c *Config) { c.RefreshInterval = 500 * time.Millisecond })
	f("idle_timeout", func(c *Config) { c.IdleTimeout = 5 * time.Minute }) // not longer than the refresh interval
	f("absolute_lifetime", func(c *Config) { c.AbsoluteLifetime = 30 * time.Minute })
	f("scenarios[1].name", func(c *Config) {
		c.Scenarios = []ScenarioSpec{{Name: "brute_force"}, {Name: "bruteforce"}}
	}, append([]string{`"bruteforce"`}, ScenarioNames()...)...)
	f("scenarios[0]", func(c *Config) { c.Scenarios = []ScenarioSpec{{Name: "brute_force", At: -time.Second}} })
	f("scenarios[0]", func(c *Config) { c.Scenarios = []ScenarioSpec{{Name: "brute_force", Count: -1}} })
	f("scenarios[0].at", func(c *Config) { c.Scenarios = []ScenarioSpec{{Name: "brute_force", At: 10 * time.Minute}} })

	// Every problem is reported, not just the first.
	err := Config{Users: -1, Rate: -1, SampleRate: -1}.Defaults().Validate()
	for _, key := range []string{"users:", "rate:", "sample_rate:"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate = %v, want it to name %s", err, key)
		}
	}
}

// TestDefaults: zero fields get their defaults, set ones are kept.
func TestDefaults(t *testing.T) {
	c := Config{Users: 7, Source: "idp"}.Defaults()
	want := Config{Users: 7, Tenants: 1, Rate: 1000, SampleRate: 1, RefreshInterval: 5 * time.Minute,
		IdleTimeout: 30 * time.Minute, AbsoluteLifetime: 12 * time.Hour, Source: "idp"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Defaults() = %+v, want %+v", c, want)
	}
	if got := (Config{}).Defaults().Source; got != "sim" {
		t.Errorf("default source %q, want sim", got)
	}
	s, err := New(Config{Users: 100, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Config().Start; st.IsZero() || time.Since(st) > time.Minute || st.Location() != time.UTC {
		t.Errorf("zero Start became %v, want now in UTC", st)
	}
}

// TestSpread: scenarios are placed in order inside the run, each ending
// before the next starts, with normal traffic before the first and after
// the last; unknown names are an error listing the known ones.
func TestSpread(t *testing.T) {
	f := func(names []string, d time.Duration) {
		t.Run(strings.Join(names, ","), func(t *testing.T) {
			specs, err := Spread(names, d)
			if err != nil {
				t.Fatal(err)
			}
			if len(specs) != len(names) {
				t.Fatalf("%d specs for %d names", len(specs), len(names))
			}
			prevEnd := time.Duration(0)
			for i, sp := range specs {
				if sp.Name != names[i] {
					t.Errorf("spec %d is %s, want %s", i, sp.Name, names[i])
				}
				if sp.At < prevEnd || sp.Duration <= 0 || sp.Duration > scenarioByName[sp.Name].duration {
					t.Errorf("spec %d (%s) at %s for %s: want from the previous one's end (%s) on, for at most its default %s",
						i, sp.Name, sp.At, sp.Duration, prevEnd, scenarioByName[sp.Name].duration)
				}
				if i+1 < len(specs) && sp.At+sp.Duration > specs[i+1].At {
					t.Errorf("spec %d (%s) runs until %s, past the next one's start %s", i, sp.Name, sp.At+sp.Duration, specs[i+1].At)
				}
				prevEnd = sp.At + sp.Duration
			}
			if prevEnd >= d {
				t.Errorf("the last scenario ends at %s, not before the end of the run %s", prevEnd, d)
			}
			if err := (Config{Duration: d, Scenarios: specs}).Defaults().Validate(); err != nil {
				t.Errorf("spread scenarios do not validate: %v", err)
			}
		})
	}
	f(ScenarioNames(), 10*time.Minute)
	f(ScenarioNames(), time.Hour)
	f([]string{"mobile_retry", "brute_force", "mobile_retry"}, 3*time.Minute)
	f([]string{"flash_sale"}, 90*time.Second)

	if specs, err := Spread(nil, time.Minute); err != nil || len(specs) != 0 {
		t.Errorf("Spread(nil) = %v, %v; want nothing", specs, err)
	}
	_, err := Spread([]string{"brute_force", "nope"}, time.Minute)
	if err == nil {
		t.Fatal("Spread accepted an unknown scenario")
	}
	for _, want := range append([]string{`"nope"`}, ScenarioNames()...) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Spread error %q does not mention %s", err, want)
		}
	}
}

// TestScenarioNames: thirteen scenarios, sorted, each with a class.
func TestScenarioNames(t *testing.T) {
	names := ScenarioNames()
	if len(names) != 13 {
		t.Errorf("%d scenarios, want 13: %v", len(names), names)
	}
	for i, n := range names {
		if i > 0 && names[i-1] >= n {
			t.Errorf("names not sorted: %s before %s", names[i-1], n)
		}
		def := scenarioByName[n]
		switch def.class {
		case "attack", "operations":
			if len(def.expect) == 0 {
				t.Errorf("%s (%s) expects no detector", n, def.class)
			}
		case "benign":
			if len(def.expect) != 0 {
				t.Errorf("benign %s expects detectors %v", n, def.expect)
			}
		default:
			t.Errorf("%s has class %q", n, def.class)
		}
	}
}
