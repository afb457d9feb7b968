package alerts_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/alerts"
	"github.com/vigilhq/vigil/detect"
)

func theft() detect.Anomaly {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	return detect.Anomaly{
		ID: "an-1", Detector: "token_reuse", Kind: "replay_other_client", Severity: detect.SeverityCritical,
		Tenant: "acme", UserID: "u1", SessionID: "s1", FamilyID: "f1", IP: "203.0.113.7", Evidence: `{"same_client":false}`,
		FirstEventTime: t0, DetectedAt: t0.Add(3 * time.Millisecond), WindowStart: t0.Add(-10 * time.Second), WindowEnd: t0,
	}
}

func TestAlertNamesAndTeams(t *testing.T) {
	tests := []struct {
		detector, kind, name, team string
	}{
		{"token_reuse", "replay_other_client", "VigilTokenReuse", "security"},
		{"session_hijack", "impossible_travel", "VigilSessionHijack", "security"},
		{"use_after_revocation", "revocation_not_enforced", "VigilUseAfterRevocation", "security"},
		{"login_storm", "credential_stuffing", "VigilCredentialStuffing", "security"},
		{"login_storm", "password_spraying", "VigilPasswordSpraying", "security"},
		{"login_storm", "brute_force", "VigilBruteForce", "security"},
		{"login_storm", "reconnect_storm", "VigilReconnectStorm", "sre"},
		{"session_churn", "end_burst", "VigilSessionChurn", "sre"},
		{"revoke", "revocation_halted", "VigilRevocationHalted", "security"},
		{"revoke", "revocation_failed", "VigilRevocationFailed", "security"},
	}
	for _, tt := range tests {
		a := theft()
		a.Detector, a.Kind = tt.detector, tt.kind
		got := alerts.Build(alerts.DefaultConfig(), nil, &a)
		if got.Labels["alertname"] != tt.name || got.Labels["team"] != tt.team {
			t.Errorf("%s/%s: alertname %q team %q, want %q %q", tt.detector, tt.kind, got.Labels["alertname"], got.Labels["team"], tt.name, tt.team)
		}
	}
	for _, name := range alerts.AnomalyAlertNames {
		if !strings.HasPrefix(name, "Vigil") {
			t.Errorf("anomaly alert %q", name)
		}
	}
}

// TestAlertContent: labels route (no user or session id unless asked),
// annotations carry who, what, the action, the runbook, the dashboard over
// the time range and the anomaly id; endsAt is the window end plus hold.
func TestAlertContent(t *testing.T) {
	c := alerts.DefaultConfig()
	c.GrafanaURL = "https://grafana.example.com/"
	a := theft()
	got := alerts.Build(c, func(*detect.Anomaly) string { return "revoke_family requested" }, &a)
	want := map[string]string{"alertname": "VigilTokenReuse", "severity": "critical", "team": "security", "tenant": "acme",
		"detector": "token_reuse", "kind": "replay_other_client", "anomaly_id": "an-1"}
	if len(got.Labels) != len(want) {
		t.Errorf("labels %v, want %v", got.Labels, want)
	}
	for k, v := range want {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, got.Labels[k], v)
		}
	}
	for k, sub := range map[string]string{
		"summary":       "family f1 of user u1",
		"description":   "user u1, session s1, family f1, ip 203.0.113.7. vigil's action: revoke_family requested.",
		"runbook_url":   alerts.DefaultRunbookURL + "/VigilTokenReuse.md",
		"dashboard_url": "https://grafana.example.com/d/vigil-session/vigil-session?from=1795434300000&to=1795435800003&var-kind=family&var-subject=f1&var-tenant=acme",
		"anomaly_id":    "an-1",
		"action":        "revoke_family requested",
	} {
		if !strings.Contains(got.Annotations[k], sub) {
			t.Errorf("annotation %s = %q, want it to contain %q", k, got.Annotations[k], sub)
		}
	}
	if !got.StartsAt.Equal(a.FirstEventTime) || !got.EndsAt.Equal(a.DetectedAt.Add(c.Hold)) {
		t.Errorf("startsAt %v endsAt %v", got.StartsAt, got.EndsAt)
	}
	c.SubjectLabels = true
	if got := alerts.Build(c, nil, &a); got.Labels["user_id"] != "u1" || got.Labels["session_id"] != "s1" || got.Labels["family_id"] != "f1" {
		t.Errorf("subject_labels: labels %v", got.Labels)
	}
	b, err := json.Marshal(got)
	if err != nil || !strings.Contains(string(b), `"startsAt":"2026-11-23T12:00:00Z"`) || !strings.Contains(string(b), `"endsAt":`) {
		t.Errorf("JSON %s (%v)", b, err)
	}
}

// TestSenderFilters: below min_severity, shadow and already-ended
// anomalies are not alerted.
func TestSenderFilters(t *testing.T) {
	c := alerts.DefaultConfig()
	c.Alertmanagers, c.AllowHTTP = []string{"http://127.0.0.1:1"}, true
	now := time.Now()
	s, err := alerts.NewSender(alerts.Options{Config: c, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(id string, sev detect.Severity, shadow bool, end time.Time) detect.Anomaly {
		a := theft()
		a.ID, a.Severity, a.Shadow, a.WindowEnd, a.DetectedAt = id, sev, shadow, end, end
		return a
	}
	_ = s.Handle(context.Background(), []detect.Anomaly{
		mk("ok", detect.SeverityMedium, false, now),
		mk("low", detect.SeverityLow, false, now),
		mk("shadow", detect.SeverityCritical, true, now),
		mk("over", detect.SeverityCritical, false, now.Add(-time.Hour)),
		mk("ok", detect.SeverityMedium, false, now), // a repeat
	})
	if got := s.Active(); len(got) != 1 || got[0].Labels["anomaly_id"] != "ok" {
		t.Errorf("active %v, want only the medium, current, non-shadow one", got)
	}
}
