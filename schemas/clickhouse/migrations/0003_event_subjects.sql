-- Timeline lookups: one row per (subject kind, subject) of each event, sorted
-- by subject then time, so "everything session S / family F / user U / IP A
-- did" reads a narrow range instead of scanning events. A family equal to its
-- session (the default) gets no separate row: look families up with
-- kind IN ('family', 'session').
CREATE TABLE IF NOT EXISTS ${db}.event_subjects
(
    kind    Enum8('session' = 1, 'family' = 2, 'user' = 3, 'ip' = 4),
    subject String,
    tenant  String,
    time    DateTime,
    time_ns Int64,
    type    Enum8('session.created' = 1, 'login.failed' = 2, 'session.validated' = 3,
                  'token.refreshed' = 4, 'token.refresh_failed' = 5, 'session.elevated' = 6,
                  'session.logout' = 7, 'session.expired' = 8, 'session.revoked' = 9),
    id      String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toDate(time)
ORDER BY (kind, subject, time, id);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.event_subjects_mv TO ${db}.event_subjects AS
SELECT
    CAST(s.1 AS Enum8('session' = 1, 'family' = 2, 'user' = 3, 'ip' = 4)) AS kind,
    s.2 AS subject,
    tenant,
    time,
    time_ns,
    type,
    id
FROM ${db}.events
ARRAY JOIN [('session', session_id), ('family', family_id), ('user', user_id), ('ip', ip)] AS s
WHERE s.2 != '' AND NOT (s.1 = 'family' AND family_id = session_id);
