package detect

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/schemas"
)

// AnomalyInsertColumns lists the anomalies table's columns in the order
// AnomalyValues returns them.
var AnomalyInsertColumns = []string{
	"id", "detector", "kind", "severity", "shadow", "tenant", "user_id", "session_id", "family_id", "ip",
	"evidence", "first_event_time", "first_event_time_ns", "detected_at", "detected_at_ns", "window_start", "window_end",
}

// AnomalyValues returns one slice per column of AnomalyInsertColumns, for
// a columnar insert.
func AnomalyValues(as []Anomaly) []any {
	n := len(as)
	str := func() []string { return make([]string, n) }
	id, det, kind, sev, ten, user, sess, fam, ip, evid := str(), str(), str(), str(), str(), str(), str(), str(), str(), str()
	shadow := make([]uint8, n)
	first, detected, ws, we := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	firstNS, detectedNS := make([]int64, n), make([]int64, n)
	for i, a := range as {
		id[i], det[i], kind[i], sev[i] = a.ID, a.Detector, a.Kind, a.Severity.String()
		if a.Shadow {
			shadow[i] = 1
		}
		ten[i], user[i], sess[i], fam[i], ip[i], evid[i] = a.Tenant, a.UserID, a.SessionID, a.FamilyID, a.IP, a.Evidence
		first[i], firstNS[i] = a.FirstEventTime, a.FirstEventTime.UnixNano()
		detected[i], detectedNS[i] = a.DetectedAt, a.DetectedAt.UnixNano()
		ws[i], we[i] = a.WindowStart, a.WindowEnd
	}
	return []any{id, det, kind, sev, shadow, ten, user, sess, fam, ip, evid, first, firstNS, detected, detectedNS, ws, we}
}

// HistoryQuery says which stored events of one partition a rebuild needs.
type HistoryQuery struct {
	// Partition is the events topic's partition.
	Partition int32
	// Before excludes offsets at or above it (not yet committed).
	Before int64
	// StateSince bounds the token and revocation events, and the
	// successful uses of families revoked since then.
	StateSince time.Time
	// ClientSince bounds every other event; it is not before StateSince.
	ClientSince time.Time
}

// History reads the events already stored for a partition, for Rebuild.
// Implementations must be safe for concurrent use by partition workers.
type History interface {
	// Newest returns the time of the newest stored event of partition
	// with an offset below before, looking back at most lookback from now;
	// ok is false when there is none.
	Newest(ctx context.Context, partition int32, before int64, lookback time.Duration) (t time.Time, ok bool, err error)
	// Events calls fn with the events q selects (valid events with a
	// family), in offset order, each offset once. fn must not keep the
	// event: it is reused.
	Events(ctx context.Context, q HistoryQuery, fn func(*schemas.Event) error) error
	// LastSeen calls fn with the time of the newest event of each family
	// seen since q.StateSince (offsets below q.Before), whatever its type.
	LastSeen(ctx context.Context, q HistoryQuery, fn func(tenant, family string, newest time.Time) error) error
}

// ClickHouseHistory reads History from the events table of a database.
type ClickHouseHistory struct {
	conn driver.Conn
	db   string
}

// NewClickHouseHistory returns a History over db.events through conn.
func NewClickHouseHistory(conn driver.Conn, db string) *ClickHouseHistory {
	return &ClickHouseHistory{conn: conn, db: db}
}

// Newest implements History.
func (h *ClickHouseHistory) Newest(ctx context.Context, partition int32, before int64, lookback time.Duration) (time.Time, bool, error) {
	var (
		ns int64
		n  uint64
	)
	err := h.conn.QueryRow(ctx, `SELECT max(time_ns), count() FROM `+h.db+`.events
	      WHERE kafka_partition = ? AND kafka_offset < ? AND time >= toDateTime(?)`,
		uint32(partition), before, time.Now().Add(-lookback).Unix()).Scan(&ns, &n)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("detect: newest event of partition %d in %s.events: %w", partition, h.db, err)
	}
	return time.Unix(0, ns).UTC(), n > 0, nil
}

// Events implements History. The events table is sorted by (type, time,
// id), so the time bounds prune day partitions and granules; the rows come
// back sorted by offset, duplicates (a replayed batch) skipped. The
// subquery is GLOBAL IN: on a cluster events is Distributed, and the
// revoked families are then read once and sent to every shard.
func (h *ClickHouseHistory) Events(ctx context.Context, q HistoryQuery, fn func(*schemas.Event) error) error {
	query := `SELECT type, time_ns, tenant, user_id, session_id, family_id, token_id, parent_token_id,
	        ip, user_agent, device_id, country, asn, outcome, reason, actor, kafka_offset
	      FROM ` + h.db + `.events
	      WHERE kafka_partition = ? AND kafka_offset < ? AND family_id != '' AND type != 'login.failed'
	        AND time >= toDateTime(?)
	        AND (type IN ('token.refreshed', 'token.refresh_failed', 'session.revoked')
	             OR time >= toDateTime(?)
	             OR (type = 'session.validated' AND outcome = 'success' AND (tenant, family_id) GLOBAL IN
	                 (SELECT tenant, family_id FROM ` + h.db + `.events
	                  WHERE kafka_partition = ? AND kafka_offset < ? AND type = 'session.revoked' AND time >= toDateTime(?))))
	      ORDER BY kafka_offset`
	rows, err := h.conn.Query(ctx, query, uint32(q.Partition), q.Before, q.StateSince.Unix(), q.ClientSince.Unix(),
		uint32(q.Partition), q.Before, q.StateSince.Unix())
	if err != nil {
		return fmt.Errorf("detect: read %s.events of partition %d: %w", h.db, q.Partition, err)
	}
	defer rows.Close()
	var (
		e                   schemas.Event
		typ, outcome, actor string
		ns, offset          int64
		prev                int64 = -1
	)
	for rows.Next() {
		if err := rows.Scan(&typ, &ns, &e.Tenant, &e.UserID, &e.SessionID, &e.FamilyID, &e.TokenID, &e.ParentTokenID,
			&e.IP, &e.UserAgent, &e.DeviceID, &e.Country, &e.ASN, &outcome, &e.Reason, &actor, &offset); err != nil {
			return fmt.Errorf("detect: scan %s.events row: %w", h.db, err)
		}
		if offset == prev {
			continue
		}
		prev = offset
		e.Type, _ = schemas.ParseType(typ)
		e.Time = time.Unix(0, ns).UTC()
		switch outcome {
		case "success":
			e.Outcome = schemas.OutcomeSuccess
		case "failure":
			e.Outcome = schemas.OutcomeFailure
		default:
			e.Outcome = schemas.OutcomeNone
		}
		e.Actor = schemas.ActorNone
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("detect: read %s.events of partition %d: %w", h.db, q.Partition, err)
	}
	return nil
}

// LastSeen implements History.
func (h *ClickHouseHistory) LastSeen(ctx context.Context, q HistoryQuery, fn func(tenant, family string, newest time.Time) error) error {
	rows, err := h.conn.Query(ctx, `SELECT tenant, family_id, max(time_ns) FROM `+h.db+`.events
	      WHERE kafka_partition = ? AND kafka_offset < ? AND family_id != '' AND time >= toDateTime(?)
	      GROUP BY tenant, family_id`, uint32(q.Partition), q.Before, q.StateSince.Unix())
	if err != nil {
		return fmt.Errorf("detect: last use of the families of partition %d in %s.events: %w", q.Partition, h.db, err)
	}
	defer rows.Close()
	var (
		tenant, fam string
		ns          int64
	)
	for rows.Next() {
		if err := rows.Scan(&tenant, &fam, &ns); err != nil {
			return fmt.Errorf("detect: scan %s.events row: %w", h.db, err)
		}
		if err := fn(tenant, fam, time.Unix(0, ns).UTC()); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("detect: last use of the families of partition %d in %s.events: %w", q.Partition, h.db, err)
	}
	return nil
}

// newestLookbacks are the successive windows Rebuild searches for the
// partition's newest stored event: a consumer far behind (catching up
// after an outage) has its newest committed events far in the past.
var newestLookbacks = []time.Duration{0, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 180 * 24 * time.Hour}

// Rebuild replays the stored events of the partition below offset before
// into its state, without raising anything, so that the first new event
// is judged as if the process had never stopped. The history is anchored
// on the newest stored event below before (not on the wall clock): token
// and revocation events over detect.rebuild_horizon before it, every
// event over session_hijack's window plus its realert_after, and each
// family's newest event for expiry. It returns how many events it
// replayed. On error the state is left empty, never half built.
func (p *Partition) Rebuild(ctx context.Context, h History, before int64) (int, error) {
	cfg := p.r.cfg
	if cfg.RebuildHorizon == 0 || before <= 0 || !p.r.Enabled() {
		return 0, nil
	}
	t0 := time.Now()
	n, err := p.rebuild(ctx, h, before)
	if err != nil {
		if ctx.Err() == nil {
			p.r.m.RebuildErrors.Inc()
		}
		p.t = newTable(cfg.StateTTL)
		return 0, err
	}
	p.r.m.RebuildEvents.Add(float64(n))
	p.r.m.RebuildSeconds.Observe(time.Since(t0).Seconds())
	p.publish()
	p.r.log.Info("detector state rebuilt", "partition", p.id, "before_offset", before, "events", n,
		"families", p.t.len(), "took", time.Since(t0).Round(time.Millisecond), slog.Duration("horizon", cfg.RebuildHorizon))
	return n, nil
}

func (p *Partition) rebuild(ctx context.Context, h History, before int64) (int, error) {
	cfg := p.r.cfg
	var (
		anchor time.Time
		found  bool
	)
	for _, lb := range newestLookbacks {
		if lb == 0 {
			lb = cfg.RebuildHorizon + time.Hour
		}
		var err error
		if anchor, found, err = h.Newest(ctx, p.id, before, lb); err != nil {
			return 0, err
		}
		if found {
			break
		}
	}
	if !found {
		return 0, nil
	}
	// Client history covers the hijack window and its realert, plus one
	// more window for uses that arrive late (out of event-time order).
	q := HistoryQuery{Partition: p.id, Before: before, StateSince: anchor.Add(-cfg.RebuildHorizon),
		ClientSince: anchor.Add(-min(2*cfg.SessionHijack.Window+cfg.SessionHijack.RealertAfter, cfg.RebuildHorizon))}
	p.restoring = true
	defer func() { p.restoring = false }()
	n := 0
	if err := h.Events(ctx, q, func(e *schemas.Event) error {
		p.observe(e, -1, nil, false)
		n++
		return nil
	}); err != nil {
		return n, err
	}
	// The replay skipped most uses older than ClientSince, so expiry
	// learns each family's newest event separately.
	err := h.LastSeen(ctx, q, func(tenant, family string, newest time.Time) error {
		if f := p.t.find1(familyKey(tenant, family)); f != nil {
			f.lastSeen = max(f.lastSeen, uint32(max(newest.Unix(), 0)))
		}
		return nil
	})
	return n, err
}
