// Package schemas defines the v1 session event, its JSON Schema, the
// allocation-light decoder that validates it, and the ClickHouse migrations
// (in schemas/clickhouse). It is the leaf of the module: it imports nothing
// else from vigil.
package schemas

import "time"

// Type is the kind of a session lifecycle event.
type Type uint8

// Event types, in the order of the ClickHouse Enum8 of the events table.
// TypeUnknown is the zero value and never appears in a valid event.
const (
	TypeUnknown Type = iota
	TypeSessionCreated
	TypeLoginFailed
	TypeSessionValidated
	TypeTokenRefreshed
	TypeTokenRefreshFailed
	TypeSessionElevated
	TypeSessionLogout
	TypeSessionExpired
	TypeSessionRevoked
	numTypes
)

var typeNames = [numTypes]string{
	"",
	"session.created",
	"login.failed",
	"session.validated",
	"token.refreshed",
	"token.refresh_failed",
	"session.elevated",
	"session.logout",
	"session.expired",
	"session.revoked",
}

// Types lists every valid event type in Enum8 order.
func Types() []Type {
	out := make([]Type, 0, numTypes-1)
	for t := TypeSessionCreated; t < numTypes; t++ {
		out = append(out, t)
	}
	return out
}

// String returns the wire name of the type, e.g. "session.created".
func (t Type) String() string {
	if t >= numTypes {
		return ""
	}
	return typeNames[t]
}

// ParseType maps a wire name to its Type; ok is false for unknown names.
func ParseType(s string) (t Type, ok bool) {
	for i := TypeSessionCreated; i < numTypes; i++ {
		if typeNames[i] == s {
			return i, true
		}
	}
	return TypeUnknown, false
}

// IsSession reports whether the type is session.* (and so needs session_id).
func (t Type) IsSession() bool {
	switch t {
	case TypeSessionCreated, TypeSessionValidated, TypeSessionElevated,
		TypeSessionLogout, TypeSessionExpired, TypeSessionRevoked:
		return true
	}
	return false
}

// IsToken reports whether the type is token.* (and so needs session_id and token_id).
func (t Type) IsToken() bool {
	return t == TypeTokenRefreshed || t == TypeTokenRefreshFailed
}

// Outcome is the result of a validation or login attempt.
type Outcome uint8

// Outcomes, in the order of the ClickHouse Enum8; OutcomeNone means absent.
const (
	OutcomeNone Outcome = iota
	OutcomeSuccess
	OutcomeFailure
)

// String returns the wire name of the outcome, "" when absent.
func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeFailure:
		return "failure"
	}
	return ""
}

// Actor says who ended a session with session.revoked.
type Actor uint8

// Actors, in the order of the ClickHouse Enum8; ActorNone means absent.
const (
	ActorNone Actor = iota
	ActorUser
	ActorAdmin
	ActorSystem
	ActorVigil
)

// String returns the wire name of the actor, "" when absent.
func (a Actor) String() string {
	switch a {
	case ActorUser:
		return "user"
	case ActorAdmin:
		return "admin"
	case ActorSystem:
		return "system"
	case ActorVigil:
		return "vigil"
	}
	return ""
}

// Attribute is one free-form key/value pair of an event's attributes.
type Attribute struct {
	Key, Value string
}

// Event is one decoded, validated v1 session lifecycle event.
//
// Optional fields are the zero value when absent; FamilyID is already
// defaulted to SessionID, SampleRate to 1, and HasLatency tells an absent
// latency_ms from a present 0. An Event returned by Decoder.Decode does not
// alias the input bytes and may be retained.
type Event struct {
	ID            string
	Type          Type
	Time          time.Time // UTC, full precision as sent
	Source        string
	Tenant        string
	UserID        string
	SessionID     string
	FamilyID      string
	TokenID       string
	ParentTokenID string
	IP            string // as sent; a valid IPv4 or IPv6 address without zone, or ""
	UserAgent     string
	DeviceID      string
	Country       string // ISO 3166-1 alpha-2, upper case, or ""
	ASN           uint32
	Outcome       Outcome
	Reason        string
	Actor         Actor
	LatencyMS     float64 // meaningful only when HasLatency
	HasLatency    bool    // latency_ms was present
	AuthMethod    string
	SampleRate    float64 // ≥ 1; 1 when absent
	Attributes    []Attribute
}
