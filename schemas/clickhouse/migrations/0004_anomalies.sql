-- What the detectors found. The id is deterministic (detector, subject,
-- window), so a replayed partition collapses onto the same row; the
-- partition key is the first offending event's day, which a replay does not
-- change. Times keep nanoseconds next to the DateTime (18.16 has no
-- DateTime64) because time-to-detect is measured in milliseconds.
CREATE TABLE IF NOT EXISTS ${db}.anomalies
(
    id                  String,
    detector            String,
    kind                String,
    severity            Enum8('info' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5),
    shadow              UInt8,
    tenant              String,
    user_id             String,
    session_id          String,
    family_id           String,
    ip                  String,
    evidence            String,
    first_event_time    DateTime,
    first_event_time_ns Int64,
    detected_at         DateTime,
    detected_at_ns      Int64,
    window_start        DateTime,
    window_end          DateTime
)
ENGINE = ReplacingMergeTree()
PARTITION BY toDate(first_event_time)
ORDER BY (detector, id);
