package revoke

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/pseudonym"
)

// Intent is one action vigil has decided to take: the message on the
// outbox topic. Its ID is the idempotency key sent to the session API, so
// every delivery of the same intent (a replayed partition, a revoker
// restarted between sending and recording) is the same request.
type Intent struct {
	// ID is the idempotency key: a digest of the anomaly id, the scope and the subject.
	ID string `json:"id"`
	// Action is the policy's decision, e.g. revoke_family.
	Action Action `json:"action"`
	// Scope is the request scope: family, session or user.
	Scope string `json:"scope"`
	// Tenant, UserID, SessionID, FamilyID and IP are the anomaly's subject.
	Tenant    string `json:"tenant"`
	UserID    string `json:"user_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	FamilyID  string `json:"family_id,omitempty"`
	IP        string `json:"ip,omitempty"`
	// Reason is the detector that raised the anomaly, e.g. token_reuse.
	Reason string `json:"reason"`
	// AnomalyID, Kind and Severity identify the finding behind the intent.
	AnomalyID string `json:"anomaly_id"`
	Kind      string `json:"kind"`
	Severity  string `json:"severity"`
	// Rule is the policy rule that chose the action.
	Rule string `json:"rule"`
	// FirstEventTime is the event time of the first offending event; time to revoke counts from it.
	FirstEventTime time.Time `json:"first_event_time"`
	// DetectedAt is when the detector raised the anomaly.
	DetectedAt time.Time `json:"detected_at"`
	// RequestedAt is when the intent was produced; the deadline counts from it.
	RequestedAt time.Time `json:"requested_at"`
}

// IntentID returns the idempotency key of the action on anomalyID with the
// given scope and subject id.
func IntentID(anomalyID, scope, subject string) string {
	h := sha256.New()
	var n [8]byte
	for _, s := range []string{"vigil-action-v1", anomalyID, scope, subject} {
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// NewIntent builds the intent for anomaly a and a revoking action act,
// requested at now. It names the subject in clear (a.Clear) when a's
// identifiers are pseudonyms: the session API knows only clear ids.
func NewIntent(a *detect.Anomaly, act Action, rule *Rule, now time.Time) Intent {
	scope := act.Scope()
	subj := detect.Subject{UserID: a.UserID, SessionID: a.SessionID, FamilyID: a.FamilyID, IP: a.IP}
	if a.Clear != nil {
		subj = *a.Clear
	}
	in := Intent{
		Action: act, Scope: scope, Tenant: a.Tenant, UserID: subj.UserID, SessionID: subj.SessionID, FamilyID: subj.FamilyID, IP: subj.IP,
		Reason: a.Detector, AnomalyID: a.ID, Kind: a.Kind, Severity: a.Severity.String(),
		FirstEventTime: a.FirstEventTime.UTC(), DetectedAt: a.DetectedAt.UTC(), RequestedAt: now.UTC(),
	}
	if rule != nil {
		in.Rule = rule.String()
	}
	in.ID = IntentID(a.ID, scope, in.Subject())
	return in
}

// Subject returns the id the scope acts on: the family, session or user id.
func (in *Intent) Subject() string {
	switch in.Scope {
	case ScopeFamily:
		return in.FamilyID
	case ScopeSession:
		return in.SessionID
	case ScopeUser:
		return in.UserID
	}
	return ""
}

// SubjectKey identifies the subject across intents, for the cool-down and
// the outbox partitioning: tenant, scope and subject id.
func (in *Intent) SubjectKey() string { return in.SubjectKeyUnder(nil) }

// SubjectKeyUnder is SubjectKey with the subject id's pseudonym under k
// (the zero Key: the id itself), as the stored actions name it.
func (in *Intent) SubjectKeyUnder(k pseudonym.Key) string {
	return in.Tenant + "\x00" + in.Scope + "\x00" + k.Of(in.Subject())
}

// DecodeIntent parses an outbox message; a message that is not a valid
// intent is an error naming the problem.
func DecodeIntent(b []byte) (Intent, error) {
	var in Intent
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("revoke: outbox message is not an intent: %w", err)
	}
	if in.ID == "" {
		return in, fmt.Errorf("revoke: intent has no id")
	}
	if in.Action.Scope() == "" || in.Action.Scope() != in.Scope {
		return in, fmt.Errorf("revoke: intent %s: action %q does not match scope %q", in.ID, in.Action, in.Scope)
	}
	if in.Subject() == "" {
		return in, fmt.Errorf("revoke: intent %s: no %s id for scope %s", in.ID, in.Scope, in.Scope)
	}
	return in, nil
}
