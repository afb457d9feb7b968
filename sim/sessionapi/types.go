// Package sessionapi is the simulated session service's revocation
// endpoint: `POST /revocations` exactly as DESIGN.md §6 specifies, with
// bearer-token and HMAC checks, idempotency keys and failure injection. It
// hands accepted revocations to a Target (the simulator, which then stops
// honouring the revoked sessions) and records each arrival.
package sessionapi

import "time"

// Scopes a revocation can have.
const (
	ScopeSession = "session"
	ScopeFamily  = "family"
	ScopeUser    = "user"
)

// Request is the JSON body of POST /revocations.
type Request struct {
	ID          string    `json:"id"`
	Scope       string    `json:"scope"`
	Tenant      string    `json:"tenant"`
	UserID      string    `json:"user_id"`
	SessionID   string    `json:"session_id"`
	FamilyID    string    `json:"family_id"`
	Reason      string    `json:"reason"`
	AnomalyID   string    `json:"anomaly_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// Outcome is what a Target did with a revocation.
type Outcome int

// Outcomes of Target.Revoke.
const (
	Revoked        Outcome = iota // the subject existed and is now revoked (201)
	AlreadyRevoked                // the subject was revoked before (409)
	NotFound                      // no such session, family or user (404)
)

// Target applies revocations: the simulated session service's state.
// Revoke is called from HTTP handler goroutines, concurrently; the
// implementation synchronises. enforced is false when the service accepts
// the revocation but will keep honouring the subject anyway (the
// revocation_not_enforced scenario).
type Target interface {
	Revoke(r Request, receivedAt time.Time) (o Outcome, enforced bool)
}
