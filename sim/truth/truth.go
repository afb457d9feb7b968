// Package truth is the simulator's ground-truth file: one JSON object per
// line saying which scenario ran when and against whom, and which
// revocations the simulated session service received. `vigil simulate`
// writes it; `vigil score` reads it to judge the detectors.
package truth

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Record kinds.
const (
	KindScenario   = "scenario"   // a scenario instance: a Scenario
	KindRevocation = "revocation" // a revocation the session service received: a Revocation
)

// Revocation outcomes, as the session service answered.
const (
	OutcomeRevoked        = "revoked"
	OutcomeAlreadyRevoked = "already_revoked"
	OutcomeNotFound       = "not_found"
)

// Scenario classes.
const (
	ClassAttack     = "attack"     // must be detected (security)
	ClassOperations = "operations" // must be detected (SRE)
	ClassBenign     = "benign"     // a look-alike that must not be flagged
)

// Scenario is one instance of a scenario: when it ran, against whom, and
// which detectors should (or, for benign ones, must not) fire. Subjects are
// the ids an anomaly about this instance would carry.
type Scenario struct {
	Record   string `json:"record"`   // always KindScenario
	Scenario string `json:"scenario"` // e.g. "token_theft_replay"
	Instance string `json:"instance"` // unique within the file, e.g. "token_theft_replay#1"
	Class    string `json:"class"`    // ClassAttack, ClassOperations or ClassBenign
	// Expect lists the detectors that should raise an anomaly for it
	// (empty for benign scenarios: any anomaly about it is a false positive).
	Expect []string `json:"expect,omitempty"`
	// Start and End bound the scenario in event time.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// FirstOffending is the event time of the first event a detector should
	// act on; FirstOffendingWall is the wall-clock time it was handed to
	// Kafka (time to detect and time to revoke are measured from it).
	FirstOffending     time.Time `json:"first_offending"`
	FirstOffendingWall time.Time `json:"first_offending_wall"`
	Tenant             string    `json:"tenant"`
	UserIDs            []string  `json:"user_ids,omitempty"`
	SessionIDs         []string  `json:"session_ids,omitempty"`
	FamilyIDs          []string  `json:"family_ids,omitempty"`
	IPs                []string  `json:"ips,omitempty"`
	Events             int       `json:"events"` // events the scenario emitted
	// Skipped says the instance never emitted its offending event (no
	// victim available, the run ended first); scoring leaves it out.
	Skipped bool   `json:"skipped,omitempty"`
	Note    string `json:"note,omitempty"` // what happened, for humans
}

// Revocation is one revocation request the simulated session service
// received and answered (a repeated idempotency key is recorded once).
type Revocation struct {
	Record      string    `json:"record"` // always KindRevocation
	ReceivedAt  time.Time `json:"received_at"`
	ID          string    `json:"id"`
	Scope       string    `json:"scope"` // session, family or user
	Tenant      string    `json:"tenant"`
	UserID      string    `json:"user_id,omitempty"`
	SessionID   string    `json:"session_id,omitempty"`
	FamilyID    string    `json:"family_id,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	AnomalyID   string    `json:"anomaly_id,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	Enforced    bool      `json:"enforced"` // false when the service ignored it (revocation_not_enforced)
	// Outcome is what the service answered: "revoked", "already_revoked"
	// or "not_found" (the subject had ended, or never existed).
	Outcome string `json:"outcome,omitempty"`
}

// File is the parsed content of a truth file.
type File struct {
	Scenarios   []Scenario
	Revocations []Revocation
}

// Writer appends records as JSON lines; it is safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

// NewWriter returns a Writer on w; call Flush before closing w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriter(w)} }

// Scenario appends a scenario record.
func (w *Writer) Scenario(s Scenario) error {
	s.Record = KindScenario
	return w.write(s)
}

// Revocation appends a revocation record.
func (w *Writer) Revocation(r Revocation) error {
	r.Record = KindRevocation
	return w.write(r)
}

func (w *Writer) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("truth: encode %T: %w", v, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	b = append(b, '\n')
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("truth: write: %w", err)
	} else if err := w.w.Flush(); err != nil { // records are rare: a killed run keeps them
		w.err = fmt.Errorf("truth: write: %w", err)
	}
	return w.err
}

// Flush writes buffered records to the underlying writer.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.w.Flush(); err != nil {
		w.err = fmt.Errorf("truth: flush: %w", err)
	}
	return w.err
}

// Close flushes and refuses later records (a revocation arriving after
// the run: the file is about to be closed); it is idempotent.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		if w.err == errClosed {
			return nil
		}
		return w.err
	}
	err := w.w.Flush()
	w.err = errClosed
	if err != nil {
		return fmt.Errorf("truth: flush: %w", err)
	}
	return nil
}

var errClosed = errors.New("truth: writer closed")

// Read parses a truth file; an unknown record kind or a malformed line is an
// error naming the line.
func Read(r io.Reader) (File, error) {
	var f File
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var head struct {
			Record string `json:"record"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			return f, fmt.Errorf("truth: line %d: %w", n, err)
		}
		switch head.Record {
		case KindScenario:
			var s Scenario
			if err := json.Unmarshal(line, &s); err != nil {
				return f, fmt.Errorf("truth: line %d: %w", n, err)
			}
			f.Scenarios = append(f.Scenarios, s)
		case KindRevocation:
			var v Revocation
			if err := json.Unmarshal(line, &v); err != nil {
				return f, fmt.Errorf("truth: line %d: %w", n, err)
			}
			f.Revocations = append(f.Revocations, v)
		default:
			return f, fmt.Errorf("truth: line %d: unknown record kind %q (want %q or %q)", n, head.Record, KindScenario, KindRevocation)
		}
	}
	if err := sc.Err(); err != nil {
		return f, fmt.Errorf("truth: %w", err)
	}
	return f, nil
}
