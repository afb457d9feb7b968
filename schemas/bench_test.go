package schemas

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

type benchMessage struct {
	name string
	data []byte
}

// benchMessages is a realistic mix: validations dominate session traffic,
// then refreshes, then logins.
var benchMessages = []benchMessage{
	{"validated", []byte(`{"id":"01J0Z8Q6W3K9V2X7Y5T4R3E2W1","type":"session.validated","time":"2025-05-31T10:00:00.123Z","source":"gateway-7f9c","tenant":"acme","user_id":"usr_8f14e45fceea167a","session_id":"ses_c9f0f895fb98ab91","ip":"203.0.113.54","country":"DE","asn":3320,"outcome":"success","latency_ms":0.42,"sample_rate":10}`)},
	{"refreshed", []byte(`{"id":"01J0Z8Q6W3K9V2X7Y5T4R3E2W2","type":"token.refreshed","time":"2025-05-31T10:00:00.123456+02:00","source":"auth-api-2","tenant":"acme","user_id":"usr_8f14e45fceea167a","session_id":"ses_c9f0f895fb98ab91","family_id":"fam_45c48cce2e2d7fbd","token_id":"rt_d3d9446802a44259","parent_token_id":"rt_6512bd43d9caa6e0","ip":"2001:db8:85a3::8a2e:370:7334","user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1","device_id":"dev_c20ad4d76fe97759","country":"FR","asn":12322,"reason":"rotation","actor":"system","latency_ms":3.75,"auth_method":"sso"}`)},
	{"created", []byte(`{"id":"01J0Z8Q6W3K9V2X7Y5T4R3E2W3","type":"session.created","time":"2025-05-31T10:00:00.999Z","source":"idp-eu-1","tenant":"acme","user_id":"usr_8f14e45fceea167a","session_id":"ses_aab3238922bcc25a","ip":"198.51.100.23","user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36","device_id":"dev_9bf31c7ff062936a","country":"NL","asn":1136,"outcome":"success","latency_ms":84.5,"auth_method":"passkey","attributes":{"region":"eu-west-1","client":"web","app_version":"5.4.1","risk_score":"12"}}`)},
}

// benchMix is the order of one pass: 7 validations, 2 refreshes, 1 login.
var benchMix = []int{0, 0, 1, 0, 0, 2, 0, 0, 1, 0}

func benchBytes() int64 {
	var n int
	for _, i := range benchMix {
		n += len(benchMessages[i].data)
	}
	return int64(n / len(benchMix)) // SetBytes is per op, one event
}

// BenchmarkDecode decodes one event per op, cycling through benchMix.
func BenchmarkDecode(b *testing.B) {
	d := NewDecoder(DefaultDecoderConfig())
	var ev Event
	b.SetBytes(benchBytes())
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := d.Decode(benchMessages[benchMix[i%len(benchMix)]].data, &ev); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/event")
}

// stdlibEvent is what a reflection-based decoder would fill (and it
// validates nothing).
type stdlibEvent struct {
	ID            string            `json:"id"`
	Type          string            `json:"type"`
	Time          string            `json:"time"`
	Source        string            `json:"source"`
	Tenant        string            `json:"tenant"`
	UserID        string            `json:"user_id"`
	SessionID     string            `json:"session_id"`
	FamilyID      string            `json:"family_id"`
	TokenID       string            `json:"token_id"`
	ParentTokenID string            `json:"parent_token_id"`
	IP            string            `json:"ip"`
	UserAgent     string            `json:"user_agent"`
	DeviceID      string            `json:"device_id"`
	Country       string            `json:"country"`
	ASN           uint32            `json:"asn"`
	Outcome       string            `json:"outcome"`
	Reason        string            `json:"reason"`
	Actor         string            `json:"actor"`
	LatencyMS     *float64          `json:"latency_ms"`
	AuthMethod    string            `json:"auth_method"`
	SampleRate    *float64          `json:"sample_rate"`
	Attributes    map[string]string `json:"attributes"`
}

// BenchmarkDecodeStdlibJSON is the baseline: encoding/json into a struct,
// without any validation.
func BenchmarkDecodeStdlibJSON(b *testing.B) {
	b.SetBytes(benchBytes())
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var ev stdlibEvent
		if err := json.Unmarshal(benchMessages[benchMix[i%len(benchMix)]].data, &ev); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/event")
}

// BenchmarkFastjsonParseOnly is the floor of a fastjson-based decoder: parse
// and visit every member, without validating or copying anything.
func BenchmarkFastjsonParseOnly(b *testing.B) {
	var p fastjson.Parser
	b.SetBytes(benchBytes())
	b.ReportAllocs()
	i := 0
	n := 0
	for b.Loop() {
		v, err := p.ParseBytes(benchMessages[benchMix[i%len(benchMix)]].data)
		if err != nil {
			b.Fatal(err)
		}
		o, _ := v.Object()
		o.Visit(func(k []byte, v *fastjson.Value) {
			if v.Type() == fastjson.TypeString {
				n += len(v.GetStringBytes())
			}
		})
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/event")
	_ = n
}

// BenchmarkFastjsonSketch estimates a decoder built on fastjson: UTF-8
// check, parse, dispatch every member, copy the strings into one buffer,
// parse time and ip with the same helpers as Decoder; it still lacks
// duplicate detection, required fields, lengths, and fastjson is lenient
// (NaN, Inf, raw control characters in strings) where the v1 contract is not.
func BenchmarkFastjsonSketch(b *testing.B) {
	var p fastjson.Parser
	buf := make([]byte, 0, 1024)
	b.SetBytes(benchBytes())
	b.ReportAllocs()
	i := 0
	var sink string
	for b.Loop() {
		msg := benchMessages[benchMix[i%len(benchMix)]].data
		if !utf8.Valid(msg) {
			b.Fatal("utf8")
		}
		v, err := p.ParseBytes(msg)
		if err != nil {
			b.Fatal(err)
		}
		o, _ := v.Object()
		buf = buf[:0]
		o.Visit(func(k []byte, v *fastjson.Value) {
			switch f := lookupField(k); f {
			case fASN, fLatencyMS, fSampleRate:
				_, _ = v.Float64()
			case fAttributes:
				ao, _ := v.Object()
				ao.Visit(func(k []byte, v *fastjson.Value) {
					buf = append(buf, k...)
					buf = append(buf, v.GetStringBytes()...)
				})
			case fTime:
				_, _ = parseTime(v.GetStringBytes())
			case fIP:
				_ = checkIP(v.GetStringBytes())
				buf = append(buf, v.GetStringBytes()...)
			default:
				buf = append(buf, v.GetStringBytes()...)
			}
		})
		sink = string(buf)
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/event")
	_ = sink
}

// BenchmarkAppendJSON encodes one event per op, cycling through benchMix
// (the simulator and producers encode with it).
func BenchmarkAppendJSON(b *testing.B) {
	var evs []Event
	d := NewDecoder(DecoderConfig{})
	for _, i := range benchMix {
		var e Event
		if err := d.Decode(benchMessages[i].data, &e); err != nil {
			b.Fatal(err)
		}
		evs = append(evs, e)
	}
	b.SetBytes(benchBytes())
	b.ReportAllocs()
	buf := make([]byte, 0, 4096)
	i := 0
	for b.Loop() {
		buf = AppendJSON(buf[:0], &evs[i%len(evs)])
		i++
	}
}
