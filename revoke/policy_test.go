package revoke_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/revoke"
)

func TestParseRule(t *testing.T) {
	f := func(in, want, wantErr string) {
		t.Helper()
		r, err := revoke.ParseRule(in)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("ParseRule(%q) error %v, want it to contain %q", in, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseRule(%q): %v", in, err)
		}
		if got := r.String(); got != want {
			t.Errorf("ParseRule(%q) = %q, want %q", in, got, want)
		}
	}
	f("token_reuse -> revoke_family", "token_reuse -> revoke_family", "")
	f("  session_hijack>=high->revoke_session ", "session_hijack >= high -> revoke_session", "")
	f("token_reuse/replay_reported -> alert_only", "token_reuse/replay_reported -> alert_only", "")
	f("* >= critical -> revoke_user", "* >= critical -> revoke_user", "")
	f("token_reuse => revoke_family", "", `must read "DETECTOR[/KIND] [>= SEVERITY] -> ACTION"`)
	f("token_reuse -> revoke_everything", "", "action must be revoke_family, revoke_session, revoke_user or alert_only")
	f("token_reuse >= severe -> revoke_family", "", "severity must be info, low, medium, high or critical")
	f("*/replay -> revoke_family", "", "a kind needs a detector")
	f("tok*en -> revoke_family", "", "detector must be a name or *")
}

func TestPolicyDecide(t *testing.T) {
	p, err := revoke.NewPolicy(revoke.DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	subject := func(a detect.Anomaly) detect.Anomaly {
		a.Tenant, a.UserID, a.SessionID, a.FamilyID = "t", "u", "s", "f"
		return a
	}
	tests := []struct {
		name string
		a    detect.Anomaly
		want revoke.Action
	}{
		{"theft revokes the family", subject(detect.Anomaly{Detector: "token_reuse", Kind: "replay_other_client", Severity: detect.SeverityCritical}), revoke.RevokeFamily},
		{"high hijack revokes the session", subject(detect.Anomaly{Detector: "session_hijack", Kind: "impossible_travel", Severity: detect.SeverityHigh}), revoke.RevokeSession},
		{"medium hijack only alerts", subject(detect.Anomaly{Detector: "session_hijack", Kind: "concurrent_clients", Severity: detect.SeverityMedium}), revoke.AlertOnly},
		{"use after revocation alerts", subject(detect.Anomaly{Detector: "use_after_revocation", Severity: detect.SeverityHigh}), revoke.AlertOnly},
		{"storms alert", subject(detect.Anomaly{Detector: "login_storm", Kind: "credential_stuffing", Severity: detect.SeverityCritical}), revoke.AlertOnly},
		{"churn alerts", subject(detect.Anomaly{Detector: "session_churn", Severity: detect.SeverityHigh}), revoke.AlertOnly},
		{"an unknown detector alerts", subject(detect.Anomaly{Detector: "new_detector", Severity: detect.SeverityCritical}), revoke.AlertOnly},
		{"shadow never acts", func() detect.Anomaly {
			a := subject(detect.Anomaly{Detector: "token_reuse", Severity: detect.SeverityCritical})
			a.Shadow = true
			return a
		}(), revoke.AlertOnly},
		{"no family id: nothing to revoke", detect.Anomaly{Detector: "token_reuse", Severity: detect.SeverityCritical, UserID: "u", SessionID: "s"}, revoke.AlertOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := p.Decide(&tt.a); got != tt.want {
				t.Errorf("Decide = %s, want %s", got, tt.want)
			}
		})
	}
	// First match wins: a narrower rule placed first overrides the default.
	p2, err := revoke.NewPolicy(append([]string{"token_reuse/replay_reported -> alert_only"}, revoke.DefaultPolicy...))
	if err != nil {
		t.Fatal(err)
	}
	a := subject(detect.Anomaly{Detector: "token_reuse", Kind: "replay_reported", Severity: detect.SeverityCritical})
	if got, r := p2.Decide(&a); got != revoke.AlertOnly || r == nil || r.Kind != "replay_reported" {
		t.Errorf("Decide = %s by %v, want alert_only by the replay_reported rule", got, r)
	}
	if _, err := revoke.NewPolicy([]string{"ok -> alert_only", "bad"}); err == nil || !strings.Contains(err.Error(), "revoke.policy[1]") {
		t.Errorf("NewPolicy error %v, want it to name revoke.policy[1]", err)
	}
}

func TestIntentIDs(t *testing.T) {
	a := detect.Anomaly{ID: "a1", Detector: "token_reuse", Kind: "replay_other_client", Severity: detect.SeverityCritical, Tenant: "t", UserID: "u", SessionID: "s", FamilyID: "f",
		FirstEventTime: time.Unix(100, 0)}
	now := time.Unix(200, 0)
	fam := revoke.NewIntent(&a, revoke.RevokeFamily, nil, now)
	again := revoke.NewIntent(&a, revoke.RevokeFamily, nil, now.Add(time.Hour))
	sess := revoke.NewIntent(&a, revoke.RevokeSession, nil, now)
	if fam.ID != again.ID {
		t.Errorf("the same anomaly and scope got two ids: %s, %s", fam.ID, again.ID)
	}
	if fam.ID == sess.ID {
		t.Errorf("family and session scope share id %s", fam.ID)
	}
	if fam.Scope != "family" || fam.Subject() != "f" || sess.Subject() != "s" || fam.Reason != "token_reuse" {
		t.Errorf("intent %+v", fam)
	}
	b := []byte(`{"id":"x","action":"revoke_family","scope":"session","session_id":"s"}`)
	if _, err := revoke.DecodeIntent(b); err == nil || !strings.Contains(err.Error(), "does not match scope") {
		t.Errorf("DecodeIntent of a mismatched intent: %v", err)
	}
	if _, err := revoke.DecodeIntent([]byte(`{"id":"x","action":"revoke_user","scope":"user"}`)); err == nil || !strings.Contains(err.Error(), "no user id") {
		t.Errorf("DecodeIntent without a subject: %v", err)
	}
	if _, err := revoke.DecodeIntent([]byte(`nope`)); err == nil {
		t.Error("DecodeIntent of garbage succeeded")
	}
}
