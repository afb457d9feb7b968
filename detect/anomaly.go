// Package detect finds compromised and misbehaving sessions in the event
// stream.
//
// Stream detectors (token_reuse, session_hijack, use_after_revocation) see
// every valid event of the partitions this process owns, in partition
// order, and judge each one in microseconds against compact per-family
// state. A Registry holds their configuration and metrics; each owned
// partition gets its own Partition, which holds that partition's state and
// is used by exactly one goroutine (the ingest worker of the partition).
// On assignment the Partition is rebuilt from the events already stored in
// ClickHouse (Rebuild) before it judges its first new event, so a restart
// or a rebalance between a token's rotation and its replay still catches
// the replay.
//
// Every judgement depends only on the events and their order, never on the
// wall clock (except the detected_at field), so replaying a partition
// yields the same anomalies with the same ids, and the anomalies table
// collapses them.
package detect

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/pseudonym"
)

// Severity ranks an anomaly, in the order of the anomalies table's Enum8.
type Severity int8

// Severities, lowest first.
const (
	SeverityInfo Severity = iota + 1
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"", "info", "low", "medium", "high", "critical"}

// String returns the severity's name, e.g. "critical".
func (s Severity) String() string {
	if s < SeverityInfo || s > SeverityCritical {
		return fmt.Sprintf("severity(%d)", int8(s))
	}
	return severityNames[s]
}

// Anomaly is one finding of a detector about one subject. Its ID is
// deterministic, so the same finding made twice (a replayed partition, two
// processes during a rebalance) is the same row.
type Anomaly struct {
	// ID is a hex digest of the detector, the subject and the window.
	ID string
	// Detector names the detector that raised it, e.g. token_reuse.
	Detector string
	// Kind says what was found, e.g. replay_other_client.
	Kind string
	// Severity ranks it; revocation policies map kind and severity to an action.
	Severity Severity
	// Shadow is set when the detector runs in shadow mode: record, never act.
	Shadow bool
	// Tenant, UserID, SessionID, FamilyID and IP name the subject; empty when not known.
	Tenant, UserID, SessionID, FamilyID, IP string
	// Evidence is a small JSON object with the facts behind the judgement.
	Evidence string
	// FirstEventTime is the event time of the first offending event.
	FirstEventTime time.Time
	// DetectedAt is the wall-clock time the detector raised it.
	DetectedAt time.Time
	// WindowStart and WindowEnd bound the events the judgement rests on.
	WindowStart, WindowEnd time.Time
	// Partition and Offset locate the offending event in the events topic.
	Partition int32
	Offset    int64
	// Clear holds the subject's identifiers in clear when UserID,
	// SessionID, FamilyID and IP are pseudonyms (privacy.key_file): what a
	// revocation must send to the session API. It is never stored; nil
	// when the identifiers are clear or not known in clear.
	Clear *Subject
	// Trace is the context of the anomaly's span when tracing is on, for
	// the outbox to continue the trace on vigil.actions; never stored, and
	// the zero SpanContext when tracing is off.
	Trace trace.SpanContext
}

// Subject is who an anomaly is about: the identifiers a revocation names.
type Subject struct {
	UserID, SessionID, FamilyID, IP string
}

// Pseudonymize replaces a's identifiers by their pseudonyms under k,
// keeping the clear ones in a.Clear unless they already were pseudonyms;
// the zero Key leaves a as it is.
func (a *Anomaly) Pseudonymize(k pseudonym.Key) {
	if !k.Enabled() {
		return
	}
	clear := Subject{a.UserID, a.SessionID, a.FamilyID, a.IP}
	a.UserID, a.SessionID, a.FamilyID, a.IP = k.Of(a.UserID), k.Of(a.SessionID), k.Of(a.FamilyID), k.Of(a.IP)
	if a.Clear == nil && clear != (Subject{a.UserID, a.SessionID, a.FamilyID, a.IP}) {
		a.Clear = &clear
	}
}

// AnomalyID returns the deterministic id of a finding: a hex digest of the
// detector, the subject (e.g. tenant and family id) and the window start.
func AnomalyID(detector string, subject []string, windowStart time.Time) string {
	h := sha256.New()
	var n [8]byte
	for _, s := range append([]string{detector}, subject...) {
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.LittleEndian.PutUint64(n[:], uint64(windowStart.UnixNano()))
	h.Write(n[:])
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
