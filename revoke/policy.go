package revoke

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/vigilhq/vigil/detect"
)

// Action is what the policy decides to do about an anomaly.
type Action string

// Actions a policy rule can name.
const (
	RevokeFamily  Action = "revoke_family"
	RevokeSession Action = "revoke_session"
	RevokeUser    Action = "revoke_user"
	AlertOnly     Action = "alert_only"
)

// Scope returns the scope of the session API request the action sends
// (family, session or user), or "" for alert_only.
func (a Action) Scope() string {
	switch a {
	case RevokeFamily:
		return ScopeFamily
	case RevokeSession:
		return ScopeSession
	case RevokeUser:
		return ScopeUser
	}
	return ""
}

// Scopes of a revocation request (DESIGN.md §6).
const (
	ScopeSession = "session"
	ScopeFamily  = "family"
	ScopeUser    = "user"
)

// Rule is one parsed policy line: anomalies of Detector (and Kind, when
// set) at MinSeverity or above get Action.
type Rule struct {
	// Detector is the detector name, or "*" for any.
	Detector string
	// Kind is the anomaly kind, or "" for any.
	Kind string
	// MinSeverity is the lowest severity the rule matches; 0 matches all.
	MinSeverity detect.Severity
	// Action is what matching anomalies get.
	Action Action
}

var ruleRE = regexp.MustCompile(`^\s*([a-z0-9_*]+)(?:/([a-z0-9_]+))?\s*(?:>=\s*([a-z]+)\s*)?->\s*([a-z_]+)\s*$`)

// ParseRule parses a policy line "DETECTOR[/KIND] [>= SEVERITY] -> ACTION",
// e.g. "session_hijack >= high -> revoke_session" or
// "token_reuse/replay_reported -> alert_only"; DETECTOR may be "*".
func ParseRule(s string) (Rule, error) {
	m := ruleRE.FindStringSubmatch(s)
	if m == nil {
		return Rule{}, fmt.Errorf(`must read "DETECTOR[/KIND] [>= SEVERITY] -> ACTION", e.g. "session_hijack >= high -> revoke_session", got %q`, s)
	}
	r := Rule{Detector: m[1], Kind: m[2], Action: Action(m[4])}
	if strings.Contains(r.Detector, "*") && r.Detector != "*" {
		return Rule{}, fmt.Errorf("detector must be a name or *, got %q", r.Detector)
	}
	if r.Detector == "*" && r.Kind != "" {
		return Rule{}, fmt.Errorf("a kind needs a detector, got %q", s)
	}
	if m[3] != "" {
		sev, ok := severityByName(m[3])
		if !ok {
			return Rule{}, fmt.Errorf("severity must be info, low, medium, high or critical, got %q", m[3])
		}
		r.MinSeverity = sev
	}
	switch r.Action {
	case RevokeFamily, RevokeSession, RevokeUser, AlertOnly:
	default:
		return Rule{}, fmt.Errorf("action must be revoke_family, revoke_session, revoke_user or alert_only, got %q", m[4])
	}
	return r, nil
}

func severityByName(s string) (detect.Severity, bool) {
	for sev := detect.SeverityInfo; sev <= detect.SeverityCritical; sev++ {
		if sev.String() == s {
			return sev, true
		}
	}
	return 0, false
}

// String renders the rule in the syntax ParseRule reads.
func (r Rule) String() string {
	s := r.Detector
	if r.Kind != "" {
		s += "/" + r.Kind
	}
	if r.MinSeverity > 0 {
		s += " >= " + r.MinSeverity.String()
	}
	return s + " -> " + string(r.Action)
}

// Policy maps anomalies to actions: the first matching rule wins, and an
// anomaly no rule matches only alerts. It is immutable and safe for
// concurrent use.
type Policy struct {
	rules []Rule
}

// NewPolicy parses lines into a Policy; errors name the line's index.
func NewPolicy(lines []string) (*Policy, error) {
	p := &Policy{}
	for i, l := range lines {
		r, err := ParseRule(l)
		if err != nil {
			return nil, fmt.Errorf("revoke.policy[%d]: %w", i, err)
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// Decide returns the action for a and the rule that chose it (nil when no
// rule matched). Shadow anomalies and anomalies without the subject the
// action needs are alert_only.
func (p *Policy) Decide(a *detect.Anomaly) (Action, *Rule) {
	if a.Shadow {
		return AlertOnly, nil
	}
	for i := range p.rules {
		r := &p.rules[i]
		if (r.Detector != "*" && r.Detector != a.Detector) || (r.Kind != "" && r.Kind != a.Kind) || a.Severity < r.MinSeverity {
			continue
		}
		if subjectOf(a, r.Action) == "" {
			return AlertOnly, r
		}
		return r.Action, r
	}
	return AlertOnly, nil
}

// subjectOf returns the id the action's scope needs from a, "" when a has none.
func subjectOf(a *detect.Anomaly, act Action) string {
	switch act {
	case RevokeFamily:
		return a.FamilyID
	case RevokeSession:
		return a.SessionID
	case RevokeUser:
		return a.UserID
	}
	return ""
}
