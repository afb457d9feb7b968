package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

const del = "\x00delete" // removes a key in msg

// msg builds a valid event of type typ (with every field its type requires)
// and applies overrides: a value of del removes the key, json.RawMessage is
// written as is.
func msg(t testing.TB, typ string, overrides map[string]any) []byte {
	t.Helper()
	m := map[string]any{"id": "evt-1", "type": typ, "time": "2025-05-31T10:00:00.123Z"}
	if typ != "login.failed" {
		m["user_id"] = "u-1"
	}
	if strings.HasPrefix(typ, "session.") || strings.HasPrefix(typ, "token.") {
		m["session_id"] = "s-1"
	}
	if strings.HasPrefix(typ, "token.") {
		m["token_id"] = "t-2"
	}
	switch typ {
	case "token.refreshed":
		m["parent_token_id"] = "t-1"
	case "session.validated":
		m["outcome"] = "success"
	case "session.revoked":
		m["actor"] = "admin"
	}
	switch typ {
	case "login.failed", "token.refresh_failed", "session.logout", "session.expired", "session.revoked":
		m["reason"] = "r"
	}
	for k, v := range overrides {
		if v == del {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// splice adds the member text kv (possibly invalid JSON) at the end of the object m.
func splice(m []byte, kv string) []byte {
	return append(m[:len(m)-1:len(m)-1], ","+kv+"}"...)
}

func TestDecodeRules(t *testing.T) {
	const V = "session.validated"
	type o = map[string]any
	long := func(n int) string { return strings.Repeat("x", n) }
	attrs := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m["k"+strings.Repeat("0", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
		}
		return m
	}
	base := string(msg(t, V, nil))
	cases := []struct {
		name   string
		in     []byte
		reason Reason // "" means valid
		field  string
	}{
		{"valid", msg(t, V, nil), "", ""},
		// whole message
		{"not utf8", []byte("{\"id\":\"\xfe\"}"), ReasonBadEncoding, ""},
		{"unpaired surrogate", msg(t, V, o{"device_id": raw(`"\udfff"`)}), ReasonBadEncoding, ""},
		{"surrogate then syntax error", []byte(`{"id":"\ud800",`), ReasonBadEncoding, ""},
		{"empty", nil, ReasonMalformedJSON, ""},
		{"whitespace only", []byte(" \n"), ReasonMalformedJSON, ""},
		{"array", []byte(`[]`), ReasonMalformedJSON, ""},
		{"number", []byte(`1`), ReasonMalformedJSON, ""},
		{"null", []byte(`null`), ReasonMalformedJSON, ""},
		{"unterminated", []byte(base[:len(base)-1]), ReasonMalformedJSON, ""},
		{"control char", []byte(strings.Replace(base, "u-1", "u\x01", 1)), ReasonMalformedJSON, ""},
		{"bad hex escape", []byte(strings.Replace(base, "u-1", `u\u12g4`, 1)), ReasonMalformedJSON, ""},
		{"plus number", splice(msg(t, V, nil), `"asn":+1`), ReasonMalformedJSON, ""},
		{"dot number", splice(msg(t, V, nil), `"asn":1.`), ReasonMalformedJSON, ""},
		{"exp number", splice(msg(t, V, nil), `"asn":1e`), ReasonMalformedJSON, ""},
		{"true prefix", splice(msg(t, V, nil), `"x":tru`), ReasonMalformedJSON, ""},
		{"deep nesting", splice(msg(t, V, nil), `"x":`+strings.Repeat("[", maxDepth)+strings.Repeat("]", maxDepth)), ReasonMalformedJSON, ""},
		{"nesting at limit", splice(msg(t, V, nil), `"x":`+strings.Repeat("[", maxDepth-1)+strings.Repeat("]", maxDepth-1)), ReasonUnknownField, "x"},
		{"syntax beats unknown field", []byte(`{"zzz":1,"id":}`), ReasonMalformedJSON, ""},
		// keys
		{"duplicate", []byte(base[:len(base)-1] + `,"user_id":"u-2"}`), ReasonDuplicateField, "user_id"},
		{"duplicate escaped", []byte(base[:len(base)-1] + `,"user\u005fid":"u-1"}`), ReasonDuplicateField, "user_id"},
		{"duplicate attribute", msg(t, V, o{"attributes": raw(`{"a":"1","\u0061":"1"}`)}), ReasonDuplicateField, "attributes"},
		{"duplicate beats unknown", []byte(base[:len(base)-1] + `,"zzz":1,"id":"e"}`), ReasonDuplicateField, "id"},
		{"unknown", msg(t, V, o{"Type": "x"}), ReasonUnknownField, "Type"},
		{"unknown long key", msg(t, V, o{long(300): 1}), ReasonUnknownField, long(128)},
		// JSON types
		{"id number", msg(t, V, o{"id": 1}), ReasonWrongType, "id"},
		{"type null", msg(t, V, o{"type": nil}), ReasonWrongType, "type"},
		{"time bool", msg(t, V, o{"time": true}), ReasonWrongType, "time"},
		{"asn string", msg(t, V, o{"asn": "1"}), ReasonWrongType, "asn"},
		{"asn null", msg(t, V, o{"asn": nil}), ReasonWrongType, "asn"},
		{"latency object", msg(t, V, o{"latency_ms": o{}}), ReasonWrongType, "latency_ms"},
		{"attributes string", msg(t, V, o{"attributes": "a=b"}), ReasonWrongType, "attributes"},
		{"attribute null", msg(t, V, o{"attributes": o{"a": nil}}), ReasonWrongType, "attributes"},
		{"attribute nested", msg(t, V, o{"attributes": o{"a": o{"b": "c"}}}), ReasonWrongType, "attributes"},
		{"outcome array", msg(t, V, o{"outcome": []string{"success"}}), ReasonWrongType, "outcome"},
		{"wrong type beats missing", msg(t, V, o{"id": del, "ip": 1}), ReasonWrongType, "ip"},
		// required
		{"no id", msg(t, V, o{"id": del}), ReasonMissingField, "id"},
		{"empty id", msg(t, V, o{"id": ""}), ReasonMissingField, "id"},
		{"no type", msg(t, V, o{"type": del}), ReasonMissingField, "type"},
		{"no time", msg(t, V, o{"time": del}), ReasonMissingField, "time"},
		{"empty time", msg(t, V, o{"time": ""}), ReasonMissingField, "time"},
		{"validated no user", msg(t, V, o{"user_id": del}), ReasonMissingField, "user_id"},
		{"login.failed no user", msg(t, "login.failed", nil), "", ""},
		{"login.failed no reason", msg(t, "login.failed", o{"reason": del}), ReasonMissingField, "reason"},
		{"created no session", msg(t, "session.created", o{"session_id": del}), ReasonMissingField, "session_id"},
		{"elevated no session", msg(t, "session.elevated", o{"session_id": ""}), ReasonMissingField, "session_id"},
		{"refresh_failed no session", msg(t, "token.refresh_failed", o{"session_id": del}), ReasonMissingField, "session_id"},
		{"refresh_failed no token", msg(t, "token.refresh_failed", o{"token_id": del}), ReasonMissingField, "token_id"},
		{"refresh_failed no reason", msg(t, "token.refresh_failed", o{"reason": ""}), ReasonMissingField, "reason"},
		{"refreshed no parent", msg(t, "token.refreshed", o{"parent_token_id": del}), ReasonMissingField, "parent_token_id"},
		{"refreshed no reason ok", msg(t, "token.refreshed", nil), "", ""},
		{"validated no outcome", msg(t, V, o{"outcome": del}), ReasonMissingField, "outcome"},
		{"validated empty outcome", msg(t, V, o{"outcome": ""}), ReasonMissingField, "outcome"},
		{"validated failure no reason", msg(t, V, o{"outcome": "failure"}), ReasonMissingField, "reason"},
		{"validated failure reason", msg(t, V, o{"outcome": "failure", "reason": "expired"}), "", ""},
		{"revoked no actor", msg(t, "session.revoked", o{"actor": del}), ReasonMissingField, "actor"},
		{"revoked empty actor", msg(t, "session.revoked", o{"actor": ""}), ReasonMissingField, "actor"},
		{"revoked no reason", msg(t, "session.revoked", o{"reason": del}), ReasonMissingField, "reason"},
		{"logout no reason", msg(t, "session.logout", o{"reason": del}), ReasonMissingField, "reason"},
		{"expired no reason", msg(t, "session.expired", o{"reason": del}), ReasonMissingField, "reason"},
		{"missing beats bad value", msg(t, V, o{"id": del, "country": "x"}), ReasonMissingField, "id"},
		{"first missing field wins", msg(t, "token.refreshed", o{"token_id": del, "user_id": del}), ReasonMissingField, "user_id"},
		// type
		{"unknown type", msg(t, V, o{"type": "session.validate"}), ReasonUnknownType, "type"},
		{"unknown type skips per-type rules", msg(t, V, o{"type": "x", "user_id": del}), ReasonUnknownType, "type"},
		// time
		{"time offset", msg(t, V, o{"time": "2025-05-31T10:00:00+14:00"}), "", ""},
		{"time no zone", msg(t, V, o{"time": "2025-05-31T10:00:00"}), ReasonBadTime, "time"},
		{"time 10 digits", msg(t, V, o{"time": "2025-05-31T10:00:00.0000000001Z"}), ReasonBadTime, "time"},
		{"time 9 digits", msg(t, V, o{"time": "2025-05-31T10:00:00.000000001Z"}), "", ""},
		{"time feb 29 2025", msg(t, V, o{"time": "2025-02-29T10:00:00Z"}), ReasonBadTime, "time"},
		{"time feb 29 2000", msg(t, V, o{"time": "2000-02-29T10:00:00Z"}), "", ""},
		{"time feb 29 1900", msg(t, V, o{"time": "1900-02-29T10:00:00Z"}), ReasonBadTime, "time"},
		{"time before epoch by offset", msg(t, V, o{"time": "1970-01-01T00:30:00+01:00"}), ReasonBadTime, "time"},
		{"time epoch by offset", msg(t, V, o{"time": "1970-01-01T01:00:00+01:00"}), "", ""},
		{"time trailing", msg(t, V, o{"time": "2025-05-31T10:00:00Zx"}), ReasonBadTime, "time"},
		{"time escaped", msg(t, V, o{"time": raw(`"2025-05-31T10:00:00\u005a"`)}), "", ""},
		{"time in future", msg(t, V, o{"time": "2025-06-01T12:05:00.000000001Z"}), ReasonTimeInFuture, "time"},
		{"time at skew", msg(t, V, o{"time": "2025-06-01T12:05:00Z"}), "", ""},
		{"bad value beats future", msg(t, V, o{"time": "2099-01-01T00:00:00Z", "asn": -1}), ReasonBadValue, "asn"},
		// ip
		{"ipv4", msg(t, V, o{"ip": "192.0.2.1"}), "", ""},
		{"ipv6", msg(t, V, o{"ip": "2001:DB8::1"}), "", ""},
		{"ipv6 zone", msg(t, V, o{"ip": "fe80::1%25eth0"}), ReasonBadIP, "ip"},
		{"ip empty", msg(t, V, o{"ip": ""}), ReasonBadIP, "ip"},
		{"ip brackets", msg(t, V, o{"ip": "[::1]"}), ReasonBadIP, "ip"},
		// country
		{"country", msg(t, V, o{"country": "GB"}), "", ""},
		{"country lower", msg(t, V, o{"country": "gb"}), ReasonBadValue, "country"},
		{"country unicode", msg(t, V, o{"country": "ÄB"}), ReasonBadValue, "country"},
		// asn
		{"asn max", msg(t, V, o{"asn": raw("4294967295")}), "", ""},
		{"asn max+1", msg(t, V, o{"asn": raw("4294967296")}), ReasonBadValue, "asn"},
		{"asn huge", msg(t, V, o{"asn": raw("1e999999999999")}), ReasonBadValue, "asn"},
		{"asn 1.0", msg(t, V, o{"asn": raw("1.0")}), "", ""},
		{"asn 1.5", msg(t, V, o{"asn": raw("1.5")}), ReasonBadValue, "asn"},
		{"asn 15e-1", msg(t, V, o{"asn": raw("15e-1")}), ReasonBadValue, "asn"},
		{"asn 0.0e5", msg(t, V, o{"asn": raw("0.0e5")}), "", ""},
		{"asn -1", msg(t, V, o{"asn": raw("-1")}), ReasonBadValue, "asn"},
		// latency and sample rate
		{"latency 0", msg(t, V, o{"latency_ms": 0}), "", ""},
		{"latency -0.0", msg(t, V, o{"latency_ms": raw("-0.0")}), "", ""},
		{"latency -1e-300", msg(t, V, o{"latency_ms": raw("-1e-300")}), ReasonBadValue, "latency_ms"},
		{"latency max float", msg(t, V, o{"latency_ms": raw("1.7976931348623157e308")}), "", ""},
		{"latency above max float", msg(t, V, o{"latency_ms": raw("1.79769313486231571e308")}), ReasonBadValue, "latency_ms"},
		{"sample_rate 1", msg(t, V, o{"sample_rate": 1}), "", ""},
		{"sample_rate 0.1e1", msg(t, V, o{"sample_rate": raw("0.1e1")}), "", ""},
		{"sample_rate 0.999", msg(t, V, o{"sample_rate": 0.999}), ReasonBadValue, "sample_rate"},
		{"sample_rate -2", msg(t, V, o{"sample_rate": -2}), ReasonBadValue, "sample_rate"},
		// outcome and actor
		{"outcome created success", msg(t, "session.created", o{"outcome": "success"}), "", ""},
		{"outcome created failure", msg(t, "session.created", o{"outcome": "failure"}), ReasonBadValue, "outcome"},
		{"outcome login.failed failure", msg(t, "login.failed", o{"outcome": "failure"}), "", ""},
		{"outcome login.failed success", msg(t, "login.failed", o{"outcome": "success"}), ReasonBadValue, "outcome"},
		{"outcome on logout", msg(t, "session.logout", o{"outcome": "success"}), ReasonBadValue, "outcome"},
		{"outcome empty optional", msg(t, "login.failed", o{"outcome": ""}), ReasonBadValue, "outcome"},
		{"outcome case", msg(t, V, o{"outcome": "Success"}), ReasonBadValue, "outcome"},
		{"actor on logout", msg(t, "session.logout", o{"actor": "user"}), "", ""},
		{"actor empty optional", msg(t, "session.logout", o{"actor": ""}), ReasonBadValue, "actor"},
		{"actor unknown", msg(t, "session.revoked", o{"actor": "root"}), ReasonBadValue, "actor"},
		// lengths
		{"id 128", msg(t, V, o{"id": long(128)}), "", ""},
		{"id 129", msg(t, V, o{"id": long(129)}), ReasonFieldTooLong, "id"},
		{"source 257", msg(t, V, o{"source": long(257)}), ReasonFieldTooLong, "source"},
		{"tenant 257", msg(t, V, o{"tenant": long(257)}), ReasonFieldTooLong, "tenant"},
		{"user_id 257", msg(t, V, o{"user_id": long(257)}), ReasonFieldTooLong, "user_id"},
		{"session_id 257", msg(t, V, o{"session_id": long(257)}), ReasonFieldTooLong, "session_id"},
		{"family_id 257", msg(t, V, o{"family_id": long(257)}), ReasonFieldTooLong, "family_id"},
		{"token_id 257", msg(t, "token.refreshed", o{"token_id": long(257)}), ReasonFieldTooLong, "token_id"},
		{"parent_token_id 257", msg(t, "token.refreshed", o{"parent_token_id": long(257)}), ReasonFieldTooLong, "parent_token_id"},
		{"device_id 257", msg(t, V, o{"device_id": long(257)}), ReasonFieldTooLong, "device_id"},
		{"reason 257", msg(t, V, o{"reason": long(257)}), ReasonFieldTooLong, "reason"},
		{"auth_method 257", msg(t, V, o{"auth_method": long(257)}), ReasonFieldTooLong, "auth_method"},
		{"user_agent 1024", msg(t, V, o{"user_agent": long(1024)}), "", ""},
		{"user_agent 1025", msg(t, V, o{"user_agent": long(1025)}), ReasonFieldTooLong, "user_agent"},
		{"bytes not characters", msg(t, V, o{"user_id": strings.Repeat("ü", 129)}), ReasonFieldTooLong, "user_id"},
		{"length after unescaping", msg(t, V, o{"id": raw(`"` + strings.Repeat(`\u0041`, 128) + `"`)}), "", ""},
		// attributes
		{"attributes 32", msg(t, V, o{"attributes": attrs(32)}), "", ""},
		{"attributes 33", msg(t, V, o{"attributes": attrs(33)}), ReasonTooManyAttributes, "attributes"},
		{"attributes 1000", msg(t, V, o{"attributes": attrs(1000)}), ReasonTooManyAttributes, "attributes"},
		{"attribute key 128", msg(t, V, o{"attributes": o{long(128): "v"}}), "", ""},
		{"attribute key 129", msg(t, V, o{"attributes": o{long(129): "v"}}), ReasonFieldTooLong, "attributes"},
		{"attribute key empty", msg(t, V, o{"attributes": o{"": "v"}}), ReasonBadValue, "attributes"},
		{"attribute value 1024", msg(t, V, o{"attributes": o{"k": long(1024)}}), "", ""},
		{"attribute value 1025", msg(t, V, o{"attributes": o{"k": long(1025)}}), ReasonFieldTooLong, "attributes"},
		{"attribute value empty", msg(t, V, o{"attributes": o{"k": ""}}), "", ""},
		{"count beats length", msg(t, V, o{"attributes": raw(`{"a":"` + long(2000) + `"` + strings.Repeat(`,"b":""`, 32) + `}`)}), ReasonTooManyAttributes, "attributes"},
		{"count beats late duplicate", msg(t, V, o{"attributes": raw(`{` + strings.Repeat(`"b":"",`, 33) + `"a":""}`)}), ReasonTooManyAttributes, "attributes"},
		{"empty key beats long value", msg(t, V, o{"attributes": raw(`{"a":"` + long(2000) + `","":""}`)}), ReasonBadValue, "attributes"},
		{"empty key beats long value, reversed", msg(t, V, o{"attributes": raw(`{"":"","a":"` + long(2000) + `"}`)}), ReasonBadValue, "attributes"},
		{"wrong type in attributes beats count", msg(t, V, o{"attributes": raw(`{` + strings.Repeat(`"b":"",`, 40) + `"a":1}`)}), ReasonWrongType, "attributes"},
	}
	d := testDecoder()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ev Event
			err := d.Decode(c.in, &ev)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T), want *DecodeError %s", err, err, c.reason)
			}
			if de.Reason != c.reason || de.Field != c.field {
				t.Fatalf("got %s field %q (%v), want %s field %q", de.Reason, de.Field, err, c.reason, c.field)
			}
			if de.Detail == "" && c.reason != ReasonDuplicateField {
				t.Errorf("no detail")
			}
			if !eventsEqual(&ev, &Event{}) {
				t.Errorf("rejected event left fields set: %+v", ev)
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	valid := msg(t, "session.validated", nil)
	pad := func(n int) []byte { // valid JSON of exactly n bytes
		return append(bytes.Repeat([]byte(" "), n-len(valid)), valid...)
	}
	f := func(max, size int, want Reason) {
		t.Helper()
		d := NewDecoder(DecoderConfig{MaxMessageBytes: max, MaxFutureSkew: time.Minute, Now: func() time.Time { return fixedNow }})
		var ev Event
		if got := ReasonOf(d.Decode(pad(size), &ev)); got != want {
			t.Errorf("max %d, size %d: %q, want %q", max, size, got, want)
		}
	}
	f(0, DefaultMaxMessageBytes, "")
	f(0, DefaultMaxMessageBytes+1, ReasonTooLarge)
	f(-1, DefaultMaxMessageBytes+1, ReasonTooLarge)
	f(512, 512, "")
	f(512, 513, ReasonTooLarge)
	// too_large is checked first: a large message of garbage is too_large.
	d := NewDecoder(DecoderConfig{MaxMessageBytes: 10})
	var ev Event
	err := d.Decode([]byte("\xff\xff not json at all"), &ev)
	if ReasonOf(err) != ReasonTooLarge || !strings.Contains(err.Error(), "10 bytes") {
		t.Errorf("got %v", err)
	}
}

func TestDecoderConfigDefaults(t *testing.T) {
	if c := DefaultDecoderConfig(); c.MaxMessageBytes != 64<<10 || c.MaxFutureSkew != 5*time.Minute || c.Now != nil {
		t.Errorf("DefaultDecoderConfig() = %+v", c)
	}
	// MaxFutureSkew zero is no tolerance, negative counts as zero.
	for _, skew := range []time.Duration{0, -time.Hour} {
		d := NewDecoder(DecoderConfig{MaxFutureSkew: skew, Now: func() time.Time { return fixedNow }})
		var ev Event
		if err := d.Decode(msg(t, "session.validated", map[string]any{"time": "2025-06-01T12:00:00Z"}), &ev); err != nil {
			t.Errorf("skew %v: time = now rejected: %v", skew, err)
		}
		err := d.Decode(msg(t, "session.validated", map[string]any{"time": "2025-06-01T12:00:00.000000001Z"}), &ev)
		if ReasonOf(err) != ReasonTimeInFuture {
			t.Errorf("skew %v: 1ns ahead: %v", skew, err)
		}
	}
	// Now nil is time.Now.
	d := NewDecoder(DecoderConfig{MaxFutureSkew: time.Minute})
	var ev Event
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	if err := d.Decode(msg(t, "session.validated", map[string]any{"time": future}), &ev); ReasonOf(err) != ReasonTimeInFuture {
		t.Errorf("an hour ahead of time.Now: %v", err)
	}
}

func TestDecodeFieldsAndDefaults(t *testing.T) {
	d := testDecoder()
	var ev Event
	in := []byte(`{"id":"e1","type":"token.refreshed","time":"2025-05-31T15:30:00.123456789+05:30",
		"source":"src","tenant":"acme","user_id":"u","session_id":"s","token_id":"t2","parent_token_id":"t1",
		"ip":"2001:DB8::1","user_agent":"ua","device_id":"dev","country":"FR","asn":12322,"reason":"rotation",
		"actor":"system","latency_ms":2.5,"auth_method":"sso","sample_rate":4,
		"attributes":{"z":"1","a":"2","m":"3"}}`)
	if err := d.Decode(in, &ev); err != nil {
		t.Fatal(err)
	}
	want := Event{
		ID: "e1", Type: TypeTokenRefreshed,
		Time:   time.Date(2025, 5, 31, 10, 0, 0, 123456789, time.UTC),
		Source: "src", Tenant: "acme", UserID: "u", SessionID: "s", FamilyID: "s", TokenID: "t2", ParentTokenID: "t1",
		IP: "2001:DB8::1", UserAgent: "ua", DeviceID: "dev", Country: "FR", ASN: 12322, Reason: "rotation",
		Actor: ActorSystem, LatencyMS: 2.5, HasLatency: true, AuthMethod: "sso", SampleRate: 4,
		Attributes: []Attribute{{"z", "1"}, {"a", "2"}, {"m", "3"}}, // input order
	}
	if !eventsEqual(&ev, &want) {
		t.Fatalf("got  %+v\nwant %+v", ev, want)
	}
	if ev.Time.Location() != time.UTC || ev.Time.Nanosecond() != 123456789 {
		t.Errorf("time %v not UTC at full precision", ev.Time)
	}

	// Defaults, and the reset of a reused Event.
	if err := d.Decode(msg(t, "session.validated", nil), &ev); err != nil {
		t.Fatal(err)
	}
	want = Event{ID: "evt-1", Type: TypeSessionValidated, Time: time.Date(2025, 5, 31, 10, 0, 0, 123000000, time.UTC),
		UserID: "u-1", SessionID: "s-1", FamilyID: "s-1", Outcome: OutcomeSuccess, SampleRate: 1}
	if !eventsEqual(&ev, &want) {
		t.Fatalf("got  %+v\nwant %+v", ev, want)
	}

	// family_id as sent; an empty one counts as absent.
	for fam, want := range map[string]string{"f-1": "f-1", "": "s-1"} {
		if err := d.Decode(msg(t, "session.validated", map[string]any{"family_id": fam}), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.FamilyID != want {
			t.Errorf("family_id %q: FamilyID %q, want %q", fam, ev.FamilyID, want)
		}
	}
	// latency_ms 0 is present.
	if err := d.Decode(msg(t, "session.validated", map[string]any{"latency_ms": 0}), &ev); err != nil || !ev.HasLatency || ev.LatencyMS != 0 {
		t.Errorf("latency 0: %v %v %v", err, ev.HasLatency, ev.LatencyMS)
	}
	// Unescaping.
	in = []byte(`{"id":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\u2028\u0000","type":"login.failed","time":"2025-05-31T10:00:00Z","reason":"r",
		"attributes":{"\u006b":"\u0076"}}`)
	if err := d.Decode(in, &ev); err != nil {
		t.Fatal(err)
	}
	if want := "\"\\/\b\f\n\r\té😀\u2028\x00"; ev.ID != want {
		t.Errorf("ID %q, want %q", ev.ID, want)
	}
	if !slices.Equal(ev.Attributes, []Attribute{{"k", "v"}}) {
		t.Errorf("attributes %v", ev.Attributes)
	}
}

func TestDecodeDoesNotAliasInput(t *testing.T) {
	d := testDecoder()
	in := []byte(`{"id":"evt-alias","type":"session.created","time":"2025-05-31T10:00:00Z","source":"src","user_id":"user","session_id":"sess",` +
		`"ip":"192.0.2.1","user_agent":"agent","country":"DE","attributes":{"key":"value","k2":"v\u00e92"}}`)
	var ev Event
	if err := d.Decode(in, &ev); err != nil {
		t.Fatal(err)
	}
	before := AppendJSON(nil, &ev)
	for i := range in {
		in[i] = 'X'
	}
	// Reusing the decoder must not touch the strings of an earlier event either.
	var other Event
	if err := d.Decode(msg(t, "token.refreshed", map[string]any{"attributes": map[string]string{"a": "b"}}), &other); err != nil {
		t.Fatal(err)
	}
	if after := AppendJSON(nil, &ev); !bytes.Equal(before, after) {
		t.Fatalf("event changed with its input:\nbefore %s\nafter  %s", before, after)
	}
}

// TestReasonIndependentOfKeyOrder re-encodes each bad corpus event with its
// keys in another order: the reason must not change.
func TestReasonIndependentOfKeyOrder(t *testing.T) {
	d := testDecoder()
	for _, c := range loadCorpus(t) {
		switch c.want {
		case "", ReasonBadEncoding, ReasonDuplicateField, ReasonMalformedJSON:
			continue // re-encoding would change the fault itself
		}
		dec := json.NewDecoder(bytes.NewReader(c.data))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		keys := slices.Sorted(maps.Keys(m))
		rev := slices.Clone(keys)
		slices.Reverse(rev)
		for _, order := range [][]string{keys, rev} {
			var b bytes.Buffer
			b.WriteByte('{')
			for i, k := range order {
				if i > 0 {
					b.WriteByte(',')
				}
				kj, _ := json.Marshal(k)
				vj, _ := json.Marshal(m[k])
				b.Write(kj)
				b.WriteByte(':')
				b.Write(vj)
			}
			b.WriteByte('}')
			var ev Event
			if got := ReasonOf(d.Decode(b.Bytes(), &ev)); got != c.want {
				t.Errorf("%s with keys %v: %q, want %q", c.name, order, got, c.want)
			}
		}
	}
}

// TestDetailHasNoValues puts a marker in the offending value of each kind of
// rejection: no error text may contain it.
func TestDetailHasNoValues(t *testing.T) {
	const secret = "s3cr3tT0k3n"
	const V = "session.validated"
	type o = map[string]any
	cases := [][]byte{
		msg(t, V, o{"id": strings.Repeat(secret, 20)}),
		msg(t, V, o{"token_id": strings.Repeat(secret, 30)}),
		msg(t, V, o{"type": secret}),
		msg(t, V, o{"time": secret}),
		msg(t, V, o{"time": "2030-01-01T00:00:00Z", "x": secret}),
		msg(t, V, o{"ip": secret}),
		msg(t, V, o{"country": secret}),
		msg(t, V, o{"outcome": secret}),
		msg(t, "session.revoked", o{"actor": secret}),
		msg(t, V, o{"attributes": o{"k": strings.Repeat(secret, 100)}}),
		msg(t, V, o{"attributes": raw(`{"k":"` + secret + `","\u006b":"` + secret + `"}`)}),
		[]byte(`{"id":"` + secret + `","id":"` + secret + `"}`),
		[]byte(`{"id":"` + secret + `",` + secret),
		[]byte(`{"id":"` + secret + "\xff\"}"),
	}
	d := testDecoder()
	for _, in := range cases {
		var ev Event
		err := d.Decode(in, &ev)
		if err == nil {
			t.Fatalf("%s: accepted", in)
		}
		if strings.Contains(err.Error(), secret[:4]) {
			t.Errorf("error text %q contains the value", err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	d := testDecoder()
	check := func(name string, ev *Event) {
		t.Helper()
		out := AppendJSON(nil, ev)
		var got Event
		if err := d.Decode(out, &got); err != nil {
			t.Fatalf("%s: Decode(AppendJSON) = %v\n%s", name, err, out)
		}
		if !eventsEqual(&got, ev) {
			t.Fatalf("%s: round trip changed the event\n%s\ngot  %+v\nwant %+v", name, out, got, *ev)
		}
		if !json.Valid(out) {
			t.Fatalf("%s: AppendJSON is not valid JSON: %s", name, out)
		}
	}
	for _, c := range loadCorpus(t) {
		if c.want != "" {
			continue
		}
		var ev Event
		if err := d.Decode(c.data, &ev); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		check(c.name, &ev)
	}
	// Hand-built events, as the simulator makes them.
	ev := Event{
		ID: "id\x01\x1f\"\\</>&\u2028\u2029\x7f", Type: TypeSessionRevoked, Time: time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC),
		UserID: "ü", SessionID: "s", FamilyID: "f", Actor: ActorVigil, Reason: "token_reuse", ASN: 1,
		LatencyMS: 1e-7, HasLatency: true, SampleRate: 1e21,
		Attributes: []Attribute{{"b", ""}, {"a", "\t"}},
	}
	check("hand-built", &ev)
	ev.LatencyMS, ev.SampleRate = 123456789.125, 1.5
	check("floats", &ev)
	ev.LatencyMS = 0
	check("latency 0", &ev)
}

func TestAppendJSON(t *testing.T) {
	ev := Event{ID: "e", Type: TypeSessionValidated, Time: time.Date(2025, 5, 31, 12, 0, 0, 1000, time.FixedZone("x", 3600)),
		UserID: "u", SessionID: "s", FamilyID: "s", Outcome: OutcomeSuccess, SampleRate: 1}
	want := `{"id":"e","type":"session.validated","time":"2025-05-31T11:00:00.000001Z","user_id":"u","session_id":"s","outcome":"success"}`
	if got := string(AppendJSON([]byte("x"), &ev)); got != "x"+want {
		t.Errorf("got  %s\nwant x%s", got, want)
	}
	ev.SampleRate = 0 // unset
	if got := string(AppendJSON(nil, &ev)); got != want {
		t.Errorf("sample_rate 0: %s", got)
	}
	for s, want := range map[string]string{
		"a\"b\\c":          `"a\"b\\c"`,
		"\n\r\t\b\f\x00":   `"\n\r\t\b\f\u0000"`,
		"\x1f\u2028\u2029": `"\u001f\u2028\u2029"`,
		"bad\xffutf8":      `"bad\ufffdutf8"`,
		"é😀<>&":            `"é😀<>&"`,
	} {
		if got := string(appendQuoted(nil, s)); got != want {
			t.Errorf("appendQuoted(%q) = %s, want %s", s, got, want)
		}
	}
	for f, want := range map[float64]string{0: "0", 1.5: "1.5", 1e21: "1e+21", 1e-7: "1e-7", 123456789: "123456789", 1e20: "100000000000000000000"} {
		if got := string(appendFloat(nil, f)); got != want {
			t.Errorf("appendFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

// TestParseTimeMatchesStdlib: whatever parseTime accepts, time.Parse with
// RFC3339Nano accepts as the same instant.
func TestParseTimeMatchesStdlib(t *testing.T) {
	for _, s := range []string{
		"2025-05-31T10:00:00Z", "2025-05-31T10:00:00.1Z", "2025-05-31T10:00:00.123456789Z",
		"2025-05-31T10:00:00+00:00", "2025-05-31T10:00:00-00:00", "2025-05-31T10:00:00.5+23:59", "2025-05-31T10:00:00-23:59",
		"2000-02-29T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "1970-01-01T00:00:00Z",
	} {
		got, problem := parseTime([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if problem != "" || err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s: parseTime %v %q, time.Parse %v %v", s, got, problem, want, err)
		}
	}
	// Stricter than time.Parse, on purpose.
	for _, s := range []string{
		"2025-05-31T10:00:00,5Z",          // comma: not RFC 3339
		"2025-05-31T10:00:00.1234567891Z", // fraction beyond nanoseconds
		"1969-12-31T23:59:59Z",            // before the epoch
		"9999-12-31T23:00:00-05:00",       // after year 9999 in UTC
	} {
		if _, problem := parseTime([]byte(s)); problem == "" {
			t.Errorf("%s: accepted", s)
		}
	}
}

func TestDecodeAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	d := NewDecoder(DefaultDecoderConfig())
	for _, m := range benchMessages {
		var ev Event
		n := testing.AllocsPerRun(100, func() {
			if err := d.Decode(m.data, &ev); err != nil {
				t.Fatal(err)
			}
		})
		want := 1.0
		if len(ev.Attributes) > 0 {
			want = 2
		}
		if n > want {
			t.Errorf("%s: %v allocations per event, want ≤ %v", m.name, n, want)
		}
	}
}
