package alerts

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/detect"
)

// ClickHouseActive returns the Options.Active loader over db.anomalies:
// the anomalies whose window closed (or which were detected) at or after
// since, each once.
func ClickHouseActive(conn driver.Conn, db string) func(ctx context.Context, since time.Time) ([]detect.Anomaly, error) {
	q := `SELECT id, detector, kind, toString(severity), shadow, tenant, user_id, session_id, family_id, ip, evidence,
  first_event_time_ns, detected_at_ns, window_start, window_end
FROM ` + db + `.anomalies FINAL
WHERE greatest(window_end, detected_at) >= ?`
	return func(ctx context.Context, since time.Time) ([]detect.Anomaly, error) {
		rows, err := conn.Query(ctx, q, since.Add(-time.Second))
		if err != nil {
			return nil, fmt.Errorf("alerts: load active anomalies: %w", err)
		}
		defer rows.Close()
		var out []detect.Anomaly
		for rows.Next() {
			var a detect.Anomaly
			var sev string
			var shadow uint8
			var first, detected int64
			if err := rows.Scan(&a.ID, &a.Detector, &a.Kind, &sev, &shadow, &a.Tenant, &a.UserID, &a.SessionID, &a.FamilyID, &a.IP, &a.Evidence,
				&first, &detected, &a.WindowStart, &a.WindowEnd); err != nil {
				return nil, fmt.Errorf("alerts: load active anomalies: %w", err)
			}
			a.Severity, _ = severityByName(sev)
			a.Shadow = shadow != 0
			a.FirstEventTime, a.DetectedAt = time.Unix(0, first), time.Unix(0, detected)
			out = append(out, a)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("alerts: load active anomalies: %w", err)
		}
		return out, nil
	}
}
