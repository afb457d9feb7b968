// Package slo declares service level objectives over session events and
// judges each event against them: which SLOs count it, and whether it was
// good. One Spec drives the Prometheus counters exported while consuming,
// the generated recording and alerting rules, and the exact report
// computed from ClickHouse.
package slo

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/vigilhq/vigil/schemas"
)

// Spec is one service level objective (names follow OpenSLO where they can).
type Spec struct {
	// Name identifies the SLO in metrics, rules and reports: lower case letters, digits, '-' and '_'.
	Name string `yaml:"name"`
	// Description says what a user experiences when the SLO is missed.
	Description string `yaml:"description"`
	// Objective is the target share of good events, in percent (e.g. 99.9).
	Objective float64 `yaml:"objective"`
	// Window is the rolling compliance window (e.g. 30d).
	Window model.Duration `yaml:"window"`
	// SLI says which events count and which of them are good.
	SLI SLI `yaml:"sli"`
}

// SLI is exactly one of its kinds.
type SLI struct {
	// Ratio counts events by type; the ones that failed for a service reason are bad.
	Ratio *RatioSLI `yaml:"ratio"`
	// Latency counts events that report latency_ms; the ones over the threshold are bad.
	Latency *LatencySLI `yaml:"latency"`
	// Enforcement counts revocations; the ones the session service did not enforce are bad.
	Enforcement *EnforcementSLI `yaml:"enforcement"`
}

// RatioSLI selects events by type. An event is bad when it failed (outcome
// failure, or a login.failed / token.refresh_failed) for one of BadReasons;
// a failure for any other reason (a wrong password, an expired or revoked
// session) is the service answering correctly, and good.
type RatioSLI struct {
	// Events are the event types counted.
	Events []string `yaml:"events"`
	// BadReasons are the failure reasons that make an event bad.
	BadReasons []string `yaml:"bad_reasons"`
}

// LatencySLI selects events by type that carry latency_ms; an event is good
// when its latency is at most ThresholdMS.
type LatencySLI struct {
	// Events are the event types counted.
	Events []string `yaml:"events"`
	// ThresholdMS is the largest good latency in milliseconds.
	ThresholdMS float64 `yaml:"threshold_ms"`
}

// EnforcementSLI counts session.revoked events; a revocation is bad when
// the session was still used successfully more than Within after it (the
// use_after_revocation detector's finding).
type EnforcementSLI struct {
	// Within is the propagation time allowed.
	Within model.Duration `yaml:"within"`
}

// Window bounds: an SLO window must hold the longest burn-rate alert
// window (3 days: the slow ticket), and the rate over the window itself
// gets costly for Prometheus beyond a quarter.
const (
	minWindow = model.Duration(3 * 24 * time.Hour)
	maxWindow = model.Duration(90 * 24 * time.Hour)
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Defaults returns the seed SLOs vigil ships with.
func Defaults() []Spec {
	month := model.Duration(30 * 24 * time.Hour)
	service := []string{"store_unavailable", "internal_error"}
	return []Spec{
		{Name: "validation-success", Objective: 99.9, Window: month,
			Description: "Session validations answer correctly: a refusal of an expired or revoked session is correct; a store or internal error is not.",
			SLI:         SLI{Ratio: &RatioSLI{Events: []string{"session.validated"}, BadReasons: service}}},
		{Name: "refresh-success", Objective: 99.5, Window: month,
			Description: "Refresh-token exchanges succeed unless the token is rightly refused.",
			SLI:         SLI{Ratio: &RatioSLI{Events: []string{"token.refreshed", "token.refresh_failed"}, BadReasons: service}}},
		{Name: "login-availability", Objective: 99.5, Window: month,
			Description: "Logins are answered; bad passwords and unknown users are the user's failure, not the service's.",
			SLI:         SLI{Ratio: &RatioSLI{Events: []string{"session.created", "login.failed"}, BadReasons: service}}},
		{Name: "issuance-latency", Objective: 95, Window: month,
			Description: "Sessions and refreshed tokens are issued within 200 ms (p95 < 200 ms).",
			SLI:         SLI{Latency: &LatencySLI{Events: []string{"session.created", "token.refreshed"}, ThresholdMS: 200}}},
		{Name: "revocation-enforcement", Objective: 99, Window: month,
			Description: "A revoked session stops working within 5 s.",
			SLI:         SLI{Enforcement: &EnforcementSLI{Within: model.Duration(5 * time.Second)}}},
	}
}

// Validate reports every problem of every spec, each naming the SLO and
// the field, e.g. `slo "login": objective: must be between 0 and 100
// (exclusive), got 100`.
func Validate(specs []Spec) error {
	var errs []error
	seen := map[string]bool{}
	for i, s := range specs {
		errs = append(errs, s.validate(i)...)
		if seen[s.Name] && s.Name != "" {
			errs = append(errs, fmt.Errorf("slo %q: name: defined twice", s.Name))
		}
		seen[s.Name] = true
	}
	return errors.Join(errs...)
}

func (s Spec) validate(i int) []error {
	var errs []error
	id := fmt.Sprintf("slo %q", s.Name)
	if s.Name == "" {
		id = fmt.Sprintf("slo #%d", i+1)
	}
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", id, field, fmt.Sprintf(format, args...)))
	}
	if !nameRE.MatchString(s.Name) {
		bad("name", "must be 1–63 lower-case letters, digits, '-' or '_', starting with a letter or digit, got %q", s.Name)
	}
	if !(s.Objective > 0 && s.Objective < 100) {
		bad("objective", "must be between 0 and 100 (exclusive), got %g", s.Objective)
	}
	if s.Window < minWindow || s.Window > maxWindow {
		bad("window", "must be at least the longest alert window (%s) and at most %s, got %s", minWindow, maxWindow, s.Window)
	}
	kinds := 0
	for _, set := range []bool{s.SLI.Ratio != nil, s.SLI.Latency != nil, s.SLI.Enforcement != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		bad("sli", "must set exactly one of ratio, latency or enforcement, got %d", kinds)
	}
	events := func(field string, types []string) {
		if len(types) == 0 {
			bad(field, "must list at least one event type")
		}
		for _, t := range types {
			if _, ok := schemas.ParseType(t); !ok {
				bad(field, "unknown event type %q (known: %s)", t, typeNames())
			}
		}
	}
	if r := s.SLI.Ratio; r != nil {
		events("sli.ratio.events", r.Events)
		if len(r.BadReasons) == 0 {
			bad("sli.ratio.bad_reasons", "must list at least one reason (otherwise every event is good)")
		}
		if slices.Contains(r.BadReasons, "") {
			bad("sli.ratio.bad_reasons", "must not contain an empty reason")
		}
	}
	if l := s.SLI.Latency; l != nil {
		events("sli.latency.events", l.Events)
		if !(l.ThresholdMS > 0) {
			bad("sli.latency.threshold_ms", "must be positive, got %g", l.ThresholdMS)
		}
	}
	if e := s.SLI.Enforcement; e != nil && (e.Within <= 0 || e.Within > model.Duration(time.Hour)) {
		bad("sli.enforcement.within", "must be between 0s (exclusive) and 1h, got %s", e.Within)
	}
	return errs
}

func typeNames() string {
	var names []string
	for _, t := range schemas.Types() {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}
