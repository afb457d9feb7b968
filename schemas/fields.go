package schemas

// field identifies one top-level key of a v1 event; the order is the
// canonical order of AppendJSON, of FieldNames and of the JSON Schema.
type field uint8

const (
	fID field = iota
	fType
	fTime
	fSource
	fTenant
	fUserID
	fSessionID
	fFamilyID
	fTokenID
	fParentTokenID
	fIP
	fUserAgent
	fDeviceID
	fCountry
	fASN
	fOutcome
	fReason
	fActor
	fLatencyMS
	fAuthMethod
	fSampleRate
	fAttributes
	numFields
	fUnknown = numFields // a key v1 does not define
)

var fieldNames = [numFields]string{
	fID:            "id",
	fType:          "type",
	fTime:          "time",
	fSource:        "source",
	fTenant:        "tenant",
	fUserID:        "user_id",
	fSessionID:     "session_id",
	fFamilyID:      "family_id",
	fTokenID:       "token_id",
	fParentTokenID: "parent_token_id",
	fIP:            "ip",
	fUserAgent:     "user_agent",
	fDeviceID:      "device_id",
	fCountry:       "country",
	fASN:           "asn",
	fOutcome:       "outcome",
	fReason:        "reason",
	fActor:         "actor",
	fLatencyMS:     "latency_ms",
	fAuthMethod:    "auth_method",
	fSampleRate:    "sample_rate",
	fAttributes:    "attributes",
}

// Limits of the v1 event, in bytes of UTF-8 after JSON unescaping.
const (
	MaxIDBytes             = 128  // id
	MaxStringBytes         = 256  // source, tenant, user_id, session_id, family_id, token_id, parent_token_id, device_id, reason, auth_method
	MaxUserAgentBytes      = 1024 // user_agent
	MaxAttributes          = 32   // entries of attributes
	MaxAttributeKeyBytes   = 128  // an attributes key (at least 1 byte)
	MaxAttributeValueBytes = 1024 // an attributes value
)

// maxBytes is the length limit of each free-form string field (0: none;
// ip and country have their own rules).
var maxBytes = [numFields]int{
	fID:            MaxIDBytes,
	fSource:        MaxStringBytes,
	fTenant:        MaxStringBytes,
	fUserID:        MaxStringBytes,
	fSessionID:     MaxStringBytes,
	fFamilyID:      MaxStringBytes,
	fTokenID:       MaxStringBytes,
	fParentTokenID: MaxStringBytes,
	fUserAgent:     MaxUserAgentBytes,
	fDeviceID:      MaxStringBytes,
	fReason:        MaxStringBytes,
	fAuthMethod:    MaxStringBytes,
}

// FieldNames returns the JSON names of every v1 event field, in canonical order.
func FieldNames() []string {
	out := make([]string, numFields)
	copy(out, fieldNames[:])
	return out
}

// lookupField maps a JSON key to its field, fUnknown when v1 does not define it.
func lookupField(k []byte) field {
	switch string(k) { // compiled to a length+value search, no allocation
	case "id":
		return fID
	case "type":
		return fType
	case "time":
		return fTime
	case "source":
		return fSource
	case "tenant":
		return fTenant
	case "user_id":
		return fUserID
	case "session_id":
		return fSessionID
	case "family_id":
		return fFamilyID
	case "token_id":
		return fTokenID
	case "parent_token_id":
		return fParentTokenID
	case "ip":
		return fIP
	case "user_agent":
		return fUserAgent
	case "device_id":
		return fDeviceID
	case "country":
		return fCountry
	case "asn":
		return fASN
	case "outcome":
		return fOutcome
	case "reason":
		return fReason
	case "actor":
		return fActor
	case "latency_ms":
		return fLatencyMS
	case "auth_method":
		return fAuthMethod
	case "sample_rate":
		return fSampleRate
	case "attributes":
		return fAttributes
	}
	return fUnknown
}
