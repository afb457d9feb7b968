package schemas

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// decoderOnlyReasons are rejections JSON Schema cannot express: for corpus
// files of these reasons the schema must accept (which proves the exemption
// is still needed) while the decoder rejects.
var decoderOnlyReasons = map[Reason]string{
	// The schema validates the parsed document; its size is not visible.
	ReasonTooLarge: "no keyword constrains the size of the serialized message",
	// A validator sees text after decoding: encoding/json (and most parsers)
	// turn invalid UTF-8 and unpaired surrogate escapes into U+FFFD.
	ReasonBadEncoding: "validators see decoded text, where bad bytes and unpaired surrogates became U+FFFD",
	// RFC 8259 leaves duplicate names undefined; parsers keep one member, so
	// the schema sees an object without the duplicate (top level or attributes).
	ReasonDuplicateField: "the parsed object keeps one member per name",
	// "now" is not part of the instance.
	ReasonTimeInFuture: "depends on the current time",
}

// decoderOnlyFiles are single corpus files whose rule the schema expresses
// only approximately.
var decoderOnlyFiles = map[string]string{
	// maxLength counts characters (code points), the limits are in bytes of
	// UTF-8: the schema's check is necessary but not sufficient for non-ASCII
	// text. (A regular expression over code points weighted by their UTF-8
	// length is possible in theory and unreadable in practice.)
	"field_too_long__multibyte_user_id": "maxLength counts characters, the limit is in bytes",
}

// Also decoder-only, without corpus files because they are edge cases of
// rules the schema does express: a time within 1970-01-01 in local time
// whose offset puts it before the epoch in UTC (the schema checks the local
// year), and a 9999-12-31 local time whose offset puts it past year 9999.

func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		t.Fatalf("session-event.v1.json is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(JSONSchemaID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(JSONSchemaID)
	if err != nil {
		t.Fatalf("compile session-event.v1.json: %v", err)
	}
	return sch
}

// schemaAccepts reports whether msg parses as JSON and validates.
func schemaAccepts(sch *jsonschema.Schema, msg []byte) (bool, error) {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(msg))
	if err != nil {
		return false, err
	}
	if err := sch.Validate(inst); err != nil {
		return false, err
	}
	return true, nil
}

func TestSchemaAndDecoderAgreeOnCorpus(t *testing.T) {
	sch := compileSchema(t)
	d := testDecoder()
	seen := map[Reason]int{}
	good := 0
	for _, c := range loadCorpus(t) {
		t.Run(c.name, func(t *testing.T) {
			var ev Event
			err := d.Decode(c.data, &ev)
			ok, schemaErr := schemaAccepts(sch, c.data)
			if c.want == "" {
				good++
				if err != nil {
					t.Errorf("decoder rejects a good event: %v", err)
				}
				if !ok {
					t.Errorf("schema rejects a good event: %v", schemaErr)
				}
				return
			}
			seen[c.want]++
			if got := ReasonOf(err); got != c.want {
				t.Errorf("decoder: reason %q (err %v), want %q", got, err, c.want)
			}
			why, decoderOnly := decoderOnlyReasons[c.want]
			if w, ok := decoderOnlyFiles[c.name]; ok {
				why, decoderOnly = w, true
			}
			switch {
			case decoderOnly && !ok:
				t.Errorf("listed as decoder-only (%s) but the schema rejects it: %v; drop the exemption", why, schemaErr)
			case !decoderOnly && ok:
				t.Errorf("schema accepts an event the decoder rejects with %s", c.want)
			}
		})
	}
	if good < 25 {
		t.Errorf("%d good corpus files, want at least 25", good)
	}
	for _, r := range Reasons() {
		if r == ReasonTooLarge {
			continue // generated in TestDecodeTooLarge
		}
		if seen[r] < 2 {
			t.Errorf("%d bad corpus files for %s, want at least 2", seen[r], r)
		}
	}
}

// TestTooLargeIsDecoderOnly generates the one reason without corpus files.
func TestTooLargeIsDecoderOnly(t *testing.T) {
	sch := compileSchema(t)
	msg := []byte(`{"id":"evt-big","type":"session.validated","time":"2025-05-31T10:00:00Z","user_id":"u","session_id":"s","outcome":"success"` +
		strings.Repeat(" ", DefaultMaxMessageBytes) + `}`)
	var ev Event
	if got := ReasonOf(testDecoder().Decode(msg, &ev)); got != ReasonTooLarge {
		t.Fatalf("decoder: %q, want too_large", got)
	}
	if ok, err := schemaAccepts(sch, msg); !ok {
		t.Fatalf("schema rejects a large but valid event: %v", err)
	}
}

func schemaDoc(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(JSONSchema(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// snake converts a Go field name to its JSON name: UserID → user_id, LatencyMS → latency_ms.
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

func TestFieldNamesAgree(t *testing.T) {
	var goNames []string
	et := reflect.TypeFor[Event]()
	for i := range et.NumField() {
		name := et.Field(i).Name
		if name == "HasLatency" { // presence flag of latency_ms, not a wire field
			continue
		}
		goNames = append(goNames, snake(name))
	}
	props := schemaDoc(t)["properties"].(map[string]any)
	var schemaNames []string
	for k := range props {
		schemaNames = append(schemaNames, k)
	}
	decoderNames := FieldNames()
	for _, n := range decoderNames {
		if lookupField([]byte(n)) == fUnknown {
			t.Errorf("decoder does not look up %q", n)
		}
	}
	// Go struct order is the canonical order.
	if !slices.Equal(goNames, decoderNames) {
		t.Errorf("Event fields %v\nFieldNames   %v", goNames, decoderNames)
	}
	slices.Sort(goNames)
	slices.Sort(schemaNames)
	if !slices.Equal(goNames, schemaNames) {
		t.Errorf("Event fields      %v\nschema properties %v", goNames, schemaNames)
	}
}

// TestSchemaConstants checks the schema's enums and limits against the Go constants.
func TestSchemaConstants(t *testing.T) {
	doc := schemaDoc(t)
	props := doc["properties"].(map[string]any)
	defs := doc["$defs"].(map[string]any)
	resolve := func(p map[string]any) map[string]any {
		if ref, ok := p["$ref"].(string); ok {
			return defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		}
		return p
	}
	enum := func(name string) []string {
		var out []string
		for _, v := range props[name].(map[string]any)["enum"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	var types []string
	for _, ty := range Types() {
		types = append(types, ty.String())
	}
	if got := enum("type"); !slices.Equal(got, types) {
		t.Errorf("type enum %v, want %v", got, types)
	}
	if got, want := enum("outcome"), []string{OutcomeSuccess.String(), OutcomeFailure.String()}; !slices.Equal(got, want) {
		t.Errorf("outcome enum %v, want %v", got, want)
	}
	if got, want := enum("actor"), []string{ActorUser.String(), ActorAdmin.String(), ActorSystem.String(), ActorVigil.String()}; !slices.Equal(got, want) {
		t.Errorf("actor enum %v, want %v", got, want)
	}
	for f, n := range maxBytes {
		if n == 0 {
			continue
		}
		name := fieldNames[f]
		p := resolve(props[name].(map[string]any))
		if got, _ := p["maxLength"].(float64); int(got) != n {
			t.Errorf("%s: schema maxLength %v, decoder limit %d bytes", name, p["maxLength"], n)
		}
	}
	attrs := props["attributes"].(map[string]any)
	if got := attrs["maxProperties"].(float64); int(got) != MaxAttributes {
		t.Errorf("attributes maxProperties %v, want %d", got, MaxAttributes)
	}
	if got := attrs["propertyNames"].(map[string]any)["maxLength"].(float64); int(got) != MaxAttributeKeyBytes {
		t.Errorf("attribute key maxLength %v, want %d", got, MaxAttributeKeyBytes)
	}
	if got := attrs["additionalProperties"].(map[string]any)["maxLength"].(float64); int(got) != MaxAttributeValueBytes {
		t.Errorf("attribute value maxLength %v, want %d", got, MaxAttributeValueBytes)
	}
	if got := doc["additionalProperties"]; got != false {
		t.Errorf("additionalProperties = %v, want false", got)
	}
	var req []string
	for _, v := range doc["required"].([]any) {
		req = append(req, v.(string))
	}
	if !slices.Equal(req, []string{"id", "type", "time"}) {
		t.Errorf("required = %v", req)
	}
}
