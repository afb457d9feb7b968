package revoke

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/pseudonym"
)

// Status is an actions-table status.
type Status string

// Statuses of actions rows. Succeeded, Failed, DryRun and Suppressed are
// final: one of them ends an action.
const (
	StatusSent       Status = "sent"
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
	StatusDryRun     Status = "dry_run"
	StatusSuppressed Status = "suppressed"
	StatusRetrying   Status = "retrying"
	// StatusResumed marks an operator ending a halt (vigil revoke resume); it belongs to no action.
	StatusResumed Status = "resumed"
)

// Final reports whether s ends an action.
func (s Status) Final() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusDryRun || s == StatusSuppressed
}

// Guardrails that suppress an action (the guardrail column).
const (
	GuardAllowUser   = "allowlist_user"
	GuardAllowTenant = "allowlist_tenant"
	GuardAllowCIDR   = "allowlist_cidr"
	GuardCooldown    = "cooldown"
	GuardBlastRadius = "blast_radius" // the action that tripped the cap
	GuardHalted      = "halted"       // actions while the cap keeps revocation halted
)

// Record is one row of the actions table.
type Record struct {
	Intent    *Intent
	AttemptID string
	Attempt   int
	Status    Status
	Guardrail string
	Adapter   string
	Endpoint  string
	HTTP      int
	Error     string
	Note      string
	Latency   time.Duration
	Time      time.Time
	// TimeToRevoke is from the first offending event to the API's acknowledgement (succeeded rows).
	TimeToRevoke time.Duration
}

// newAttemptID returns a random id for one attempt's rows.
func newAttemptID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Seed is what the revoker needs to know of its past on taking over the
// outbox: actions already final, and the recent revocations and halt that
// the cool-down and the cap count.
type Seed struct {
	// Final holds the ids of actions with a final row.
	Final map[string]bool
	// Starts are the recent revocation starts (first sent or dry_run row of each action).
	Starts []Start
	// TrippedAt is the latest trip of the cap within halt_for, zero if none;
	// TripID is the action that tripped it.
	TrippedAt time.Time
	TripID    string
	// ResumedAt is the latest operator resume within halt_for, zero if none.
	ResumedAt time.Time
}

// Store makes actions rows durable and reads the revoker's past back.
//
// Implementations must be safe for concurrent use. Write either stores
// every row or returns an error, and a retried Write of rows that were in
// fact stored must not duplicate them (the actions table collapses on
// action_id, attempt_id and status).
type Store interface {
	// Write inserts rows.
	Write(ctx context.Context, rows []Record) error
	// Load reads the past needed to resume: final actions since finalSince,
	// revocation starts since startsSince, the latest trip and resume since tripSince.
	Load(ctx context.Context, finalSince, startsSince, tripSince time.Time) (Seed, error)
	// LastResume returns the latest operator resume since since, zero if none.
	LastResume(ctx context.Context, since time.Time) (time.Time, error)
}

// ActionColumns lists the actions table's insert columns in Values order.
var ActionColumns = []string{
	"action_id", "attempt_id", "attempt", "status", "guardrail", "action", "scope", "adapter", "endpoint",
	"tenant", "user_id", "session_id", "family_id", "ip", "reason", "anomaly_id", "kind", "severity", "rule",
	"http_status", "error", "note", "latency_ms", "time", "time_ns", "requested_at_ns", "first_event_time_ns", "time_to_revoke_ms",
}

// ClickHouseStore is a Store over the actions table of one database.
type ClickHouseStore struct {
	conn       driver.Conn
	db         string
	insert     string
	pseudonyms pseudonym.Key
}

// WithPseudonyms makes Write store pseudonyms of the actions' user,
// session and family ids and IPs under k; it returns s.
func (s *ClickHouseStore) WithPseudonyms(k pseudonym.Key) *ClickHouseStore {
	s.pseudonyms = k
	return s
}

// NewClickHouseStore returns a Store writing db.actions through conn.
func NewClickHouseStore(conn driver.Conn, db string) *ClickHouseStore {
	return &ClickHouseStore{conn: conn, db: db, insert: "INSERT INTO " + db + ".actions (" + strings.Join(ActionColumns, ", ") + ")"}
}

// Write implements Store with one columnar insert.
func (s *ClickHouseStore) Write(ctx context.Context, rows []Record) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	str := func() []string { return make([]string, n) }
	aid, att, st, guard, act, scope, adapter, ep := str(), str(), str(), str(), str(), str(), str(), str()
	ten, user, sess, fam, ip, reason, anom, kind, sev, rule, errs, note := str(), str(), str(), str(), str(), str(), str(), str(), str(), str(), str(), str()
	attempt, code := make([]uint16, n), make([]uint16, n)
	lat, ttr := make([]float64, n), make([]float64, n)
	tm := make([]time.Time, n)
	tns, rns, fns := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, r := range rows {
		in := r.Intent
		aid[i], att[i], attempt[i], st[i], guard[i] = in.ID, r.AttemptID, uint16(min(r.Attempt, 65535)), string(r.Status), r.Guardrail
		act[i], scope[i], adapter[i], ep[i] = string(in.Action), in.Scope, r.Adapter, r.Endpoint
		p := s.pseudonyms.Of
		ten[i], user[i], sess[i], fam[i], ip[i] = in.Tenant, p(in.UserID), p(in.SessionID), p(in.FamilyID), p(in.IP)
		reason[i], anom[i], kind[i], sev[i], rule[i] = in.Reason, in.AnomalyID, in.Kind, in.Severity, in.Rule
		code[i], errs[i], note[i] = uint16(max(min(r.HTTP, 65535), 0)), r.Error, r.Note
		lat[i] = float64(r.Latency) / float64(time.Millisecond)
		ttr[i] = float64(r.TimeToRevoke) / float64(time.Millisecond)
		tm[i], tns[i] = r.Time, r.Time.UnixNano()
		rns[i], fns[i] = in.RequestedAt.UnixNano(), in.FirstEventTime.UnixNano()
	}
	b, err := s.conn.PrepareBatch(ctx, s.insert)
	if err != nil {
		return fmt.Errorf("revoke: prepare actions insert: %w", err)
	}
	for i, v := range []any{aid, att, attempt, st, guard, act, scope, adapter, ep, ten, user, sess, fam, ip, reason, anom, kind, sev, rule, code, errs, note, lat, tm, tns, rns, fns, ttr} {
		if err := b.Column(i).Append(v); err != nil {
			_ = b.Abort()
			return fmt.Errorf("revoke: append actions column %s: %w", ActionColumns[i], err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("revoke: insert actions: %w", err)
	}
	return nil
}

// Load implements Store.
func (s *ClickHouseStore) Load(ctx context.Context, finalSince, startsSince, tripSince time.Time) (Seed, error) {
	seed := Seed{Final: map[string]bool{}}
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT action_id FROM "+s.db+".actions WHERE time >= ? AND status IN ('succeeded', 'failed', 'dry_run', 'suppressed')", finalSince.Add(-time.Second))
	if err != nil {
		return seed, fmt.Errorf("revoke: load final actions: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return seed, fmt.Errorf("revoke: load final actions: %w", err)
		}
		seed.Final[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return seed, fmt.Errorf("revoke: load final actions: %w", err)
	}
	// A revocation starts with its first sent row (or its dry_run row, which
	// the guardrails count the same way).
	rows, err = s.conn.Query(ctx, `SELECT action_id, tenant, scope, multiIf(scope = 'family', family_id, scope = 'session', session_id, user_id) AS subject, min(time_ns) AS started
FROM `+s.db+`.actions WHERE time >= ? AND status IN ('sent', 'dry_run')
GROUP BY action_id, tenant, scope, subject`, startsSince.Add(-time.Second))
	if err != nil {
		return seed, fmt.Errorf("revoke: load recent revocations: %w", err)
	}
	for rows.Next() {
		var id, tenant, scope, subject string
		var ns int64
		if err := rows.Scan(&id, &tenant, &scope, &subject, &ns); err != nil {
			rows.Close()
			return seed, fmt.Errorf("revoke: load recent revocations: %w", err)
		}
		if t := time.Unix(0, ns); !t.Before(startsSince) {
			seed.Starts = append(seed.Starts, Start{ActionID: id, Subject: tenant + "\x00" + scope + "\x00" + subject, At: t})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return seed, fmt.Errorf("revoke: load recent revocations: %w", err)
	}
	var trip int64
	var tripID string
	if err := s.conn.QueryRow(ctx, "SELECT max(time_ns), argMax(action_id, time_ns) FROM "+s.db+".actions WHERE time >= ? AND guardrail = ?", tripSince.Add(-time.Second), GuardBlastRadius).Scan(&trip, &tripID); err != nil {
		return seed, fmt.Errorf("revoke: load halt: %w", err)
	}
	if trip > 0 && !time.Unix(0, trip).Before(tripSince) {
		seed.TrippedAt, seed.TripID = time.Unix(0, trip), tripID
	}
	if seed.ResumedAt, err = s.LastResume(ctx, tripSince); err != nil {
		return seed, err
	}
	return seed, nil
}

// LastResume implements Store.
func (s *ClickHouseStore) LastResume(ctx context.Context, since time.Time) (time.Time, error) {
	var ns int64
	if err := s.conn.QueryRow(ctx, "SELECT max(time_ns) FROM "+s.db+".actions WHERE time >= ? AND status = 'resumed'", since.Add(-time.Second)).Scan(&ns); err != nil {
		return time.Time{}, fmt.Errorf("revoke: load resume: %w", err)
	}
	if ns <= 0 || time.Unix(0, ns).Before(since) {
		return time.Time{}, nil
	}
	return time.Unix(0, ns), nil
}

// HaltStatus is what `vigil revoke status` reports about the cap.
type HaltStatus struct {
	// TrippedAt and TripID are the latest trip of the cap, zero if none.
	TrippedAt time.Time
	TripID    string
	// ResumedAt is the latest operator resume, zero if none.
	ResumedAt time.Time
	// Until is when the halt ends, zero when revocation is not halted.
	Until time.Time
}

// Halt reads whether revocation is halted at now under c, from the trips
// and resumes recorded in the actions table.
func (s *ClickHouseStore) Halt(ctx context.Context, c Config, now time.Time) (HaltStatus, error) {
	seed, err := s.Load(ctx, now, now, now.Add(-c.HaltFor))
	if err != nil {
		return HaltStatus{}, err
	}
	h := HaltStatus{TrippedAt: seed.TrippedAt, TripID: seed.TripID, ResumedAt: seed.ResumedAt}
	if !h.TrippedAt.IsZero() && h.ResumedAt.Before(h.TrippedAt) && now.Before(h.TrippedAt.Add(c.HaltFor)) {
		h.Until = h.TrippedAt.Add(c.HaltFor)
	}
	return h, nil
}

// RecordResume writes an operator's resume: running revokers end their
// halt within seconds and count the cap afresh from now. reason and by are
// kept in the row for the audit.
func (s *ClickHouseStore) RecordResume(ctx context.Context, reason, by string, now time.Time) error {
	in := &Intent{ID: fmt.Sprintf("resume-%d", now.UnixNano()), Reason: reason, RequestedAt: now}
	return s.Write(ctx, []Record{{Intent: in, AttemptID: newAttemptID(), Status: StatusResumed, Note: "resumed by " + by, Time: now}})
}

// auditItem is a row waiting to be written and what to tell when it is.
type auditItem struct {
	rec Record
	cb  func(durable bool) // nil for rows nothing waits on
}

// auditor batches actions rows into the Store: every 50 ms or 1,000
// rows, retrying a failed write with backoff until it succeeds or the run
// ends. Callbacks run on its goroutine, in row order.
type auditor struct {
	store        Store
	m            *Metrics
	log          *slog.Logger
	initial, max time.Duration

	mu      sync.Mutex
	queue   []auditItem
	closed  bool // the loop ended: rows added now are abandoned at once
	lost    int  // rows abandoned at shutdown
	wake    chan struct{}
	ctx     context.Context
	closing chan struct{}
	done    chan struct{}
}

func newAuditor(s Store, m *Metrics, log *slog.Logger, initial, max time.Duration) *auditor {
	return &auditor{store: s, m: m, log: log, initial: initial, max: max, wake: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{})}
}

// add queues rec; cb (may be nil) is called once it is durable (true) or
// abandoned at shutdown (false).
func (a *auditor) add(rec Record, cb func(bool)) {
	a.mu.Lock()
	if a.closed {
		a.lost++
		a.mu.Unlock()
		if cb != nil {
			cb(false)
		}
		return
	}
	a.queue = append(a.queue, auditItem{rec, cb})
	n := len(a.queue)
	a.mu.Unlock()
	if n == 1 || n >= 1000 {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

func (a *auditor) start(ctx context.Context) {
	a.ctx = ctx
	go a.loop()
}

// stop flushes what is queued (bounded by the run context) and ends the loop.
func (a *auditor) stop() error {
	close(a.closing)
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lost > 0 {
		return fmt.Errorf("revoke: %d actions rows not written at shutdown (their intents stay uncommitted and are resumed)", a.lost)
	}
	return nil
}

func (a *auditor) loop() {
	defer close(a.done)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		closing := false
		select {
		case <-a.wake:
			// A first row after a quiet spell: give the rest of its burst a moment.
			select {
			case <-time.After(5 * time.Millisecond):
			case <-a.closing:
				closing = true
			}
		case <-t.C:
		case <-a.closing:
			closing = true
		case <-a.ctx.Done():
			closing = true
		}
		ok := a.flush()
		if closing || (!ok && a.ctx.Err() != nil) {
			if ok {
				ok = a.flush()
			}
			a.abandon()
			return
		}
	}
}

// flush writes everything queued, retrying until it is written or the run
// ends; it reports whether the queue was written.
func (a *auditor) flush() bool {
	a.mu.Lock()
	items := a.queue
	a.queue = nil
	a.mu.Unlock()
	if len(items) == 0 {
		return true
	}
	rows := make([]Record, len(items))
	for i := range items {
		rows[i] = items[i].rec
	}
	b := backoff{initial: a.initial, max: a.max}
	for {
		ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
		err := a.store.Write(ctx, rows)
		cancel()
		if err == nil {
			break
		}
		a.m.StoreErrors.Inc()
		if a.ctx.Err() != nil {
			a.mu.Lock()
			a.queue = append(items, a.queue...)
			a.mu.Unlock()
			return false
		}
		wait := b.next()
		a.log.Warn("revoker: writing actions rows failed; retrying (offsets wait)", "rows", len(rows), "in", wait, "err", err)
		select {
		case <-a.ctx.Done():
		case <-time.After(wait):
		}
	}
	for _, it := range items {
		if it.cb != nil {
			it.cb(true)
		}
	}
	return true
}

// abandon closes the auditor and tells the waiters of rows that will not
// be written.
func (a *auditor) abandon() {
	a.mu.Lock()
	items := a.queue
	a.queue, a.closed = nil, true
	a.lost += len(items)
	a.mu.Unlock()
	for _, it := range items {
		if it.cb != nil {
			it.cb(false)
		}
	}
}
