package schemas

import (
	"bytes"
	"errors"
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

// FuzzParseTime: what parseTime accepts, time.Parse(time.RFC3339Nano)
// accepts as the same instant.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2025-05-31T10:00:00Z", "2025-05-31T10:00:00.123456789+05:30", "1970-01-01T00:00:00-00:00", "2000-02-29T23:59:59.5-23:59"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, problem := parseTime([]byte(s))
		if problem != "" {
			return
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
