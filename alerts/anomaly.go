// Package alerts turns anomalies into Alertmanager alerts and generates the
// Prometheus rules that watch the pipeline itself.
//
// The Sender (sender.go) posts every anomaly of at least
// alerts.min_severity to each configured Alertmanager (API v2), with an
// alertname per kind, labels for routing (severity, team, tenant,
// detector) and annotations with the context a responder needs (who, what,
// the action vigil took, a runbook and a dashboard link). Each alert
// carries its planned end (the anomaly's window end plus alerts.hold) as
// endsAt and is re-sent every alerts.resend_interval until then, so
// Alertmanager resolves it by itself when the window closes and a restart,
// which reloads the still-active anomalies from ClickHouse, neither loses
// an active alert nor resends a resolved one. A resolved alert is still
// posted for KeepResolved, for an Alertmanager that restarted meanwhile.
//
// rules.go generates the pipeline's alerting rules (alerts/rules/), and
// alerts/runbooks/ holds a runbook for every alert.
package alerts

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/detect"
)

// Teams an alert is routed to (the team label).
const (
	TeamSecurity = "security"
	TeamSRE      = "sre"
)

// Alert is one alert as Alertmanager's API v2 takes it (postableAlert).
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// kindAlert names the alert of one detector (and kind) and its team.
type kindAlert struct {
	name, team string
}

// alertOf maps an anomaly's detector and kind to its alertname and team.
func alertOf(detector, kind string) kindAlert {
	switch detector {
	case "token_reuse":
		return kindAlert{"VigilTokenReuse", TeamSecurity}
	case "session_hijack":
		return kindAlert{"VigilSessionHijack", TeamSecurity}
	case "use_after_revocation":
		return kindAlert{"VigilUseAfterRevocation", TeamSecurity}
	case "login_storm":
		switch kind {
		case "credential_stuffing":
			return kindAlert{"VigilCredentialStuffing", TeamSecurity}
		case "password_spraying":
			return kindAlert{"VigilPasswordSpraying", TeamSecurity}
		case "brute_force":
			return kindAlert{"VigilBruteForce", TeamSecurity}
		case "reconnect_storm":
			return kindAlert{"VigilReconnectStorm", TeamSRE}
		}
		return kindAlert{"VigilLoginStorm", TeamSecurity}
	case "session_churn":
		return kindAlert{"VigilSessionChurn", TeamSRE}
	case "revoke":
		if kind == "revocation_halted" {
			return kindAlert{"VigilRevocationHalted", TeamSecurity}
		}
		return kindAlert{"VigilRevocationFailed", TeamSecurity}
	}
	// A detector this version does not know: its own name, no runbook yet.
	return kindAlert{"Vigil" + camel(detector), TeamSecurity}
}

func camel(s string) string {
	var b strings.Builder
	for _, w := range strings.Split(s, "_") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// builder makes alerts from anomalies under one Config.
type builder struct {
	cfg    Config
	action func(*detect.Anomaly) string
}

// endsAt is when the anomaly's alert resolves: its window end (or
// detection, whichever is later) plus the hold.
func (b *builder) endsAt(a *detect.Anomaly) time.Time {
	end := a.WindowEnd
	if a.DetectedAt.After(end) {
		end = a.DetectedAt
	}
	return end.Add(b.cfg.Hold)
}

// wanted reports whether a becomes an alert at all.
func (b *builder) wanted(a *detect.Anomaly) bool {
	minSev, _ := severityByName(b.cfg.MinSeverity)
	return a.Severity >= minSev && (!a.Shadow || b.cfg.Shadow)
}

// alert builds a's alert.
func (b *builder) alert(a *detect.Anomaly) Alert {
	ka := alertOf(a.Detector, a.Kind)
	labels := map[string]string{
		"alertname": ka.name, "severity": a.Severity.String(), "team": ka.team,
		"detector": a.Detector, "kind": a.Kind, "anomaly_id": a.ID,
	}
	if a.Tenant != "" {
		labels["tenant"] = a.Tenant
	}
	if a.Shadow {
		labels["shadow"] = "true"
	}
	if b.cfg.SubjectLabels {
		for k, v := range map[string]string{"user_id": a.UserID, "session_id": a.SessionID, "family_id": a.FamilyID} {
			if v != "" {
				labels[k] = v
			}
		}
	}
	action := "alert only"
	if b.action != nil {
		action = b.action(a)
	}
	ann := map[string]string{
		"summary":     summary(a),
		"description": description(a, action),
		"anomaly_id":  a.ID,
		"action":      action,
	}
	if b.cfg.RunbookURL != "" {
		ann["runbook_url"] = strings.TrimRight(b.cfg.RunbookURL, "/") + "/" + ka.name + ".md"
	}
	al := Alert{Labels: labels, Annotations: ann, StartsAt: a.FirstEventTime.UTC(), EndsAt: b.endsAt(a).UTC()}
	if b.cfg.GrafanaURL != "" {
		al.Annotations["dashboard_url"] = dashboardURL(b.cfg.GrafanaURL, ka.team, a, al.EndsAt)
		al.GeneratorURL = al.Annotations["dashboard_url"]
	}
	return al
}

// dashboardURL links the dashboard that answers the alert over the
// anomaly's time range (15 minutes before its first event to its alert's
// end): for a security anomaly about a subject, that subject's timeline in
// vigil-session (family, session, user or address, the most specific
// first); otherwise vigil-security, or vigil-pipeline for SRE alerts, for
// the anomaly's tenant. The uids and variables are those of dashboards/.
func dashboardURL(base, team string, a *detect.Anomaly, end time.Time) string {
	uid := "vigil-security"
	q := url.Values{}
	q.Set("from", strconv.FormatInt(a.FirstEventTime.Add(-15*time.Minute).UnixMilli(), 10))
	q.Set("to", strconv.FormatInt(end.UnixMilli(), 10))
	switch {
	case team == TeamSRE:
		uid = "vigil-pipeline"
	case a.FamilyID != "", a.SessionID != "", a.UserID != "", a.IP != "":
		uid = "vigil-session"
		for _, s := range []struct{ kind, id string }{{"family", a.FamilyID}, {"session", a.SessionID}, {"user", a.UserID}, {"ip", a.IP}} {
			if s.id != "" {
				q.Set("var-kind", s.kind)
				q.Set("var-subject", s.id)
				break
			}
		}
	}
	if a.Tenant != "" {
		q.Set("var-tenant", a.Tenant)
	}
	return strings.TrimRight(base, "/") + "/d/" + uid + "/" + uid + "?" + q.Encode()
}

func summary(a *detect.Anomaly) string {
	where := ""
	if a.Tenant != "" {
		where = " in tenant " + a.Tenant
	}
	switch a.Detector {
	case "token_reuse":
		return fmt.Sprintf("Refresh token replayed (%s): family %s of user %s%s", a.Kind, orDash(a.FamilyID), orDash(a.UserID), where)
	case "session_hijack":
		return fmt.Sprintf("Session %s of user %s used from two clients (%s)%s", orDash(a.SessionID), orDash(a.UserID), a.Kind, where)
	case "use_after_revocation":
		return fmt.Sprintf("Revoked session %s of user %s still accepted%s", orDash(a.SessionID), orDash(a.UserID), where)
	case "revoke":
		if a.Kind == "revocation_halted" {
			return "vigil halted automated revocation: the blast-radius cap was reached"
		}
		return fmt.Sprintf("A revocation for user %s failed%s", orDash(a.UserID), where)
	}
	return fmt.Sprintf("%s: %s%s", a.Detector, strings.ReplaceAll(a.Kind, "_", " "), where)
}

func description(a *detect.Anomaly, action string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "What: %s / %s, severity %s, first offending event %s, detected %s.",
		a.Detector, a.Kind, a.Severity, a.FirstEventTime.UTC().Format(time.RFC3339Nano), a.DetectedAt.UTC().Format(time.RFC3339Nano))
	var who []string
	for _, f := range []struct{ k, v string }{{"tenant", a.Tenant}, {"user", a.UserID}, {"session", a.SessionID}, {"family", a.FamilyID}, {"ip", a.IP}} {
		if f.v != "" {
			who = append(who, f.k+" "+f.v)
		}
	}
	if len(who) > 0 {
		fmt.Fprintf(&b, " Who: %s.", strings.Join(who, ", "))
	}
	fmt.Fprintf(&b, " vigil's action: %s.", action)
	if a.Evidence != "" {
		fmt.Fprintf(&b, " Evidence: %s", a.Evidence)
	}
	fmt.Fprintf(&b, " Anomaly id %s.", a.ID)
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Build returns the alert of anomaly a under c; action describes what
// vigil does about it (nil: "alert only").
func Build(c Config, action func(*detect.Anomaly) string, a *detect.Anomaly) Alert {
	b := builder{cfg: c, action: action}
	return b.alert(a)
}
