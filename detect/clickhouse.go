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

// History yields the events already stored for a partition, for Rebuild.
type History interface {
	// Events calls fn with every valid event stored from partition whose
	// offset is below before, in offset order, each offset once: the
	// token and revocation events since stateSince, every event since
	// clientSince. fn must not keep the event: it is reused.
	Events(ctx context.Context, partition int32, before int64, stateSince, clientSince time.Time, fn func(*schemas.Event) error) error
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

// Events implements History. The events table is sorted by (type, time,
// id), so the time bounds prune day partitions and granules; the rows come
// back sorted by offset, duplicates (a replayed batch) skipped.
func (h *ClickHouseHistory) Events(ctx context.Context, partition int32, before int64, stateSince, clientSince time.Time, fn func(*schemas.Event) error) error {
	q := `SELECT type, time_ns, tenant, user_id, session_id, family_id, token_id, parent_token_id,
	        ip, user_agent, device_id, country, asn, outcome, reason, actor, kafka_offset
	      FROM ` + h.db + `.events
	      WHERE kafka_partition = ? AND kafka_offset < ? AND family_id != ''
	        AND time >= toDateTime(?)
	        AND (type IN ('token.refreshed', 'token.refresh_failed', 'session.revoked') OR time >= toDateTime(?))
	      ORDER BY kafka_offset`
	rows, err := h.conn.Query(ctx, q, uint32(partition), before, stateSince.Unix(), clientSince.Unix())
	if err != nil {
		return fmt.Errorf("detect: read %s.events of partition %d: %w", h.db, partition, err)
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
		return fmt.Errorf("detect: read %s.events of partition %d: %w", h.db, partition, err)
	}
	return nil
}

// Rebuild replays the stored events of the partition below offset before
// into its state, without raising anything, so that the first new event
// is judged as if the process had never stopped. It returns how many
// events it replayed. On error the state is left empty, never half built.
func (p *Partition) Rebuild(ctx context.Context, h History, before int64) (int, error) {
	cfg := p.r.cfg
	if cfg.RebuildHorizon == 0 || before <= 0 || !p.r.Enabled() {
		return 0, nil
	}
	t0 := time.Now()
	now := p.r.now()
	clientHorizon := min(max(cfg.SessionHijack.Window, cfg.SessionHijack.RealertAfter), cfg.RebuildHorizon)
	n := 0
	err := h.Events(ctx, p.id, before, now.Add(-cfg.RebuildHorizon), now.Add(-clientHorizon), func(e *schemas.Event) error {
		p.restore(e)
		n++
		return nil
	})
	p.r.m.RebuildEvents.Add(float64(n))
	if err != nil {
		p.r.m.RebuildErrors.Inc()
		p.t = newTable(cfg.StateTTL)
		return 0, err
	}
	p.r.m.RebuildSeconds.Observe(time.Since(t0).Seconds())
	p.publish()
	p.r.log.Info("detector state rebuilt", "partition", p.id, "before_offset", before, "events", n,
		"families", p.t.len(), "took", time.Since(t0).Round(time.Millisecond), slog.Duration("horizon", cfg.RebuildHorizon))
	return n, nil
}
