package score

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/sim/truth"
)

var dbNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// anomalyColumns are the anomalies table's columns in the order LoadAnomalies scans them.
const anomalyColumns = "id, detector, kind, severity, shadow, tenant, user_id, session_id, family_id, ip, evidence, " +
	"first_event_time, first_event_time_ns, detected_at, detected_at_ns, window_start, window_end"

// Compute reads the anomalies from database o.Database and scores them and
// the truth file's revocations against f. Without a connection or without
// an anomalies table, detection is not scored and the report says why.
func Compute(ctx context.Context, conn driver.Conn, f truth.File, o Options) (Report, error) {
	db := o.database()
	anomalies, ok, err := LoadAnomalies(ctx, conn, db)
	if err != nil {
		return Report{}, err
	}
	if !ok {
		r := score(f, nil, o, false)
		r.Notes = append(r.Notes, fmt.Sprintf("no anomalies table in %s: detection not scored", db))
		return r, nil
	}
	return Score(f, anomalies, o), nil
}

// LoadAnomalies reads every anomaly of db.anomalies (deduplicated with
// FINAL); exists is false, with no error, when conn is nil or the table is
// missing.
func LoadAnomalies(ctx context.Context, conn driver.Conn, db string) (anomalies []Anomaly, exists bool, err error) {
	if conn == nil {
		return nil, false, nil
	}
	if !dbNameRE.MatchString(db) {
		return nil, false, fmt.Errorf("score: bad database name %q", db)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'anomalies'", db).Scan(&n); err != nil {
		return nil, false, fmt.Errorf("score: look up %s.anomalies in system.tables: %w", db, err)
	}
	if n == 0 {
		return nil, false, nil
	}
	rows, err := conn.Query(ctx, "SELECT "+anomalyColumns+" FROM "+db+".anomalies FINAL ORDER BY detector, id")
	if err != nil {
		return nil, true, fmt.Errorf("score: read %s.anomalies: %w", db, err)
	}
	defer rows.Close()
	anomalies = []Anomaly{}
	for rows.Next() {
		var (
			a                      Anomaly
			shadow                 uint8
			firstEvent, detected   time.Time
			firstEventNS, detectNS int64
		)
		if err := rows.Scan(&a.ID, &a.Detector, &a.Kind, &a.Severity, &shadow, &a.Tenant, &a.UserID, &a.SessionID, &a.FamilyID, &a.IP, &a.Evidence,
			&firstEvent, &firstEventNS, &detected, &detectNS, &a.WindowStart, &a.WindowEnd); err != nil {
			return nil, true, fmt.Errorf("score: scan %s.anomalies row: %w", db, err)
		}
		a.Shadow = shadow != 0
		a.FirstEventTime = preciseTime(firstEvent, firstEventNS)
		a.DetectedAt = preciseTime(detected, detectNS)
		a.WindowStart = a.WindowStart.UTC()
		a.WindowEnd = a.WindowEnd.UTC()
		anomalies = append(anomalies, a)
	}
	if err := rows.Err(); err != nil {
		return nil, true, fmt.Errorf("score: read %s.anomalies: %w", db, err)
	}
	return anomalies, true, nil
}

// preciseTime is the Unix-nanosecond column when set, else the
// second-precision DateTime column.
func preciseTime(seconds time.Time, ns int64) time.Time {
	if ns != 0 {
		return time.Unix(0, ns).UTC()
	}
	return seconds.UTC()
}
