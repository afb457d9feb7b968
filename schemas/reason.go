package schemas

import (
	"errors"
	"fmt"
)

// Reason is why a message was rejected; the list is closed and each value is
// a label of vigil_ingest_invalid_total and the vigil-reason DLQ header.
type Reason string

// The closed list of rejection reasons.
const (
	ReasonTooLarge          Reason = "too_large"           // message larger than the configured maximum
	ReasonBadEncoding       Reason = "bad_encoding"        // not valid UTF-8
	ReasonMalformedJSON     Reason = "malformed_json"      // not JSON, or not a JSON object
	ReasonDuplicateField    Reason = "duplicate_field"     // the same key twice in the object
	ReasonUnknownField      Reason = "unknown_field"       // a key v1 does not define (extensions go in attributes)
	ReasonWrongType         Reason = "wrong_type"          // a field has the wrong JSON type
	ReasonMissingField      Reason = "missing_field"       // a field required for this type is absent or empty
	ReasonUnknownType       Reason = "unknown_type"        // type is not one of the nine v1 types
	ReasonBadTime           Reason = "bad_time"            // time is not RFC 3339
	ReasonTimeInFuture      Reason = "time_in_future"      // time is later than now plus the allowed skew
	ReasonBadIP             Reason = "bad_ip"              // ip is not an IPv4 or IPv6 address
	ReasonFieldTooLong      Reason = "field_too_long"      // a string longer than its limit
	ReasonBadValue          Reason = "bad_value"           // out of range or not in the field's enum
	ReasonTooManyAttributes Reason = "too_many_attributes" // more than 32 attributes
)

// Reasons returns the closed list of rejection reasons, in a stable order.
func Reasons() []Reason {
	return []Reason{
		ReasonTooLarge, ReasonBadEncoding, ReasonMalformedJSON, ReasonDuplicateField,
		ReasonUnknownField, ReasonWrongType, ReasonMissingField, ReasonUnknownType,
		ReasonBadTime, ReasonTimeInFuture, ReasonBadIP, ReasonFieldTooLong,
		ReasonBadValue, ReasonTooManyAttributes,
	}
}

// DecodeError is a permanent rejection of one message: it names the reason
// from the closed list and, where there is one, the offending field.
type DecodeError struct {
	Reason Reason
	Field  string // JSON field name, "" when the message as a whole is bad
	Detail string // human-readable detail; never contains field values that may be secrets
}

// Error formats the rejection as "reason: field: detail".
func (e *DecodeError) Error() string {
	switch {
	case e.Field != "" && e.Detail != "":
		return fmt.Sprintf("%s: %s: %s", e.Reason, e.Field, e.Detail)
	case e.Field != "":
		return fmt.Sprintf("%s: %s", e.Reason, e.Field)
	case e.Detail != "":
		return fmt.Sprintf("%s: %s", e.Reason, e.Detail)
	}
	return string(e.Reason)
}

// ReasonOf returns the Reason of a *DecodeError in err's chain, or "" if none.
func ReasonOf(err error) Reason {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ""
}
