package schemas

import (
	"bytes"
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"testing"
	"time"
)

// FuzzDecode: the decoder never panics; an accepted event survives
// AppendJSON and Decode unchanged and does not alias its input; a rejection
// is a *DecodeError with a reason from the closed list.
func FuzzDecode(f *testing.F) {
	for _, c := range loadCorpus(f) {
		f.Add(c.data)
	}
	for _, m := range benchMessages {
		f.Add(m.data)
	}
	reasons := Reasons()
	f.Fuzz(func(t *testing.T, msg []byte) {
		d := testDecoder()
		in := bytes.Clone(msg)
		var ev Event
		err := d.Decode(in, &ev)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			if !slices.Contains(reasons, de.Reason) {
				t.Fatalf("reason %q is not in Reasons()", de.Reason)
			}
			if !eventsEqual(&ev, &Event{}) {
				t.Fatalf("rejected, yet the event is filled: %+v", ev)
			}
			return
		}
		if ev.Type == TypeUnknown || ev.ID == "" || ev.Time.IsZero() || ev.SampleRate < 1 {
			t.Fatalf("accepted an incomplete event: %+v", ev)
		}
		before := AppendJSON(nil, &ev)
		for i := range in {
			in[i] = '?'
		}
		// A second decode must not disturb the first event either.
		var scratch Event
		_ = d.Decode(msg, &scratch)
		out := AppendJSON(nil, &ev)
		if !bytes.Equal(before, out) {
			t.Fatalf("event aliases its input:\nbefore %s\nafter  %s", before, out)
		}
		// The re-encoding may be longer (U+2028 is escaped): no size limit here.
		d2 := NewDecoder(DecoderConfig{MaxMessageBytes: 1 << 30, MaxFutureSkew: DefaultMaxFutureSkew, Now: func() time.Time { return fixedNow }})
		var got Event
		if err := d2.Decode(out, &got); err != nil {
			t.Fatalf("Decode(AppendJSON(ev)) = %v\n%s", err, out)
		}
		if !eventsEqual(&got, &ev) {
			t.Fatalf("round trip changed the event\n%s\ngot  %+v\nwant %+v", out, got, ev)
		}
	})
}

// rfc3339Syntax is RFC 3339 date-time syntax with upper-case T and Z and at
// most 9 fraction digits, with offsets in range.
var rfc3339Syntax = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`)

// FuzzParseTime: what parseTime accepts, time.Parse(time.RFC3339Nano)
// accepts as the same instant in UTC; what parseTime rejects and time.Parse
// accepts falls under parseTime's documented strictness.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2025-05-31T10:00:00Z", "2025-05-31T10:00:00.123456789+05:30", "1970-01-01T00:00:00-00:00", "2000-02-29T23:59:59.5-23:59"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, problem := parseTime([]byte(s))
		if problem != "" {
			// Only the documented strictness may reject what time.Parse
			// accepts: syntax outside RFC 3339 (time.Parse takes a 1-digit
			// hour, a comma, more than 9 fraction digits, offsets up to
			// 24:60), and instants before 1970 or after 9999 in UTC.
			want, err := time.Parse(time.RFC3339Nano, s)
			if err != nil || !rfc3339Syntax.MatchString(s) || want.Before(unixEpoch) || want.UTC().Year() > 9999 {
				return
			}
			t.Fatalf("%q: parseTime rejects (%s), time.Parse accepts %v", s, problem, want)
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("%q: parseTime %v, time.Parse %v %v", s, got, want, err)
		}
	})
}

// FuzzNumber: the fast path of numbers agrees with the exact slow path.
func FuzzNumber(f *testing.F) {
	for _, s := range []string{"0", "1", "1.5", "0.001", "4294967295", "4294967296", "1.0", "9007199254740993", "123456789012345678", "0.1", "2.675", "1e3", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := &Decoder{s: []byte(s)}
		raw, ok := d.number()
		if !ok || d.i != len(s) {
			return // not a JSON number
		}
		for _, fl := range []field{fASN, fLatencyMS, fSampleRate} {
			fast, slow := testDecoder(), testDecoder()
			fast.reset(nil)
			slow.reset(nil)
			if !fast.numberFast(fl, raw) {
				continue
			}
			slow.numberSlow(fl, raw)
			if slow.ekey != 0 || fast.asn != slow.asn || fast.lat != slow.lat || fast.rate != slow.rate {
				t.Fatalf("%s %q: fast %v %v %v, slow %v %v %v (%v)", fieldNames[fl], s, fast.asn, fast.lat, fast.rate, slow.asn, slow.lat, slow.rate, slow.err)
			}
		}
	})
}

// FuzzCheckIP: checkIP accepts exactly what netip.ParseAddr accepts without a zone.
func FuzzCheckIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "255.255.255.255", "256.1.1.1", "01.2.3.4", "0.0.0.0", "1.2.3", "1.2.3.4.5", "::1", "fe80::1%eth0", "::ffff:1.2.3.4", "1..2.3", "", "1.2.3.4%x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := netip.ParseAddr(s)
		want := err == nil && a.Zone() == ""
		if got := checkIP([]byte(s)) == ""; got != want {
			t.Fatalf("checkIP(%q) valid = %v, netip says %v (%v)", s, got, want, err)
		}
	})
}
