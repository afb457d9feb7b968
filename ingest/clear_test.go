package ingest

import (
	"testing"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/schemas"
)

// TestClearSubject: an anomaly raised on a pseudonymized event gets the
// clear ids of exactly the identifiers it names, and none when it names a
// subject other than the event's.
func TestClearSubject(t *testing.T) {
	ev := &schemas.Event{UserID: "ps_u", SessionID: "ps_s", FamilyID: "ps_f", IP: "ps_i"}
	clear := detect.Subject{UserID: "alice", SessionID: "s1", FamilyID: "f1", IP: "10.0.0.1"}
	f := func(name string, a detect.Anomaly, want *detect.Subject) {
		t.Helper()
		got := clearSubject(&a, ev, clear)
		if (got == nil) != (want == nil) || (got != nil && *got != *want) {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
	f("theft: user, session, family", detect.Anomaly{UserID: "ps_u", SessionID: "ps_s", FamilyID: "ps_f"}, &detect.Subject{UserID: "alice", SessionID: "s1", FamilyID: "f1"})
	f("hijack: session and IP only", detect.Anomaly{SessionID: "ps_s", IP: "ps_i"}, &detect.Subject{SessionID: "s1", IP: "10.0.0.1"})
	f("another family", detect.Anomaly{UserID: "ps_u", FamilyID: "ps_other"}, nil)
	f("names nothing", detect.Anomaly{}, nil)
}
