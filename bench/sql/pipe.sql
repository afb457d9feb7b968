-- The target of `kcat … | clickhouse-client --query "INSERT INTO {db}.pipe_in
-- FORMAT JSONEachRow"` in `vigil bench`: a Null table whose views write the
-- same tables vigil writes (events and event_subjects). The time (RFC 3339)
-- is parsed by MATERIALIZED columns; attributes are not mapped
-- (JSONEachRow skips them), kafka_partition and kafka_offset stay 0.
CREATE TABLE {db}.pipe_in
(
    id              String,
    type            Enum8('session.created' = 1, 'login.failed' = 2, 'session.validated' = 3,
                          'token.refreshed' = 4, 'token.refresh_failed' = 5, 'session.elevated' = 6,
                          'session.logout' = 7, 'session.expired' = 8, 'session.revoked' = 9),
    time            String,
    source          String,
    tenant          String,
    user_id         String,
    session_id      String,
    family_id       String,
    token_id        String,
    parent_token_id String,
    ip              String,
    user_agent      String,
    device_id       String,
    country         String,
    asn             UInt32,
    outcome         Enum8('' = 0, 'success' = 1, 'failure' = 2),
    reason          String,
    actor           Enum8('' = 0, 'user' = 1, 'admin' = 2, 'system' = 3, 'vigil' = 4),
    latency_ms      Nullable(Float64),
    auth_method     String,
    sample_rate     Float64,
    time_dt         DateTime MATERIALIZED parseDateTimeBestEffort(time),
    time_ns         Int64 MATERIALIZED toInt64(toUInt32(parseDateTimeBestEffort(time))) * 1000000000
                      + toInt64(substring(concat(extract(time, '\\.([0-9]+)'), '000000000'), 1, 9))
)
ENGINE = Null;

CREATE MATERIALIZED VIEW {db}.pipe_mv TO {db}.events AS
SELECT
    id, type, time_dt AS time, time_ns,
    source, tenant, user_id, session_id,
    if(family_id = '', session_id, family_id) AS family_id,
    token_id, parent_token_id, ip, user_agent, device_id, country, asn,
    outcome, reason, actor, latency_ms, auth_method,
    if(sample_rate = 0, 1., sample_rate) AS sample_rate,
    emptyArrayString() AS `attributes.key`,
    emptyArrayString() AS `attributes.value`,
    toUInt32(0) AS kafka_partition,
    toInt64(0) AS kafka_offset,
    now() AS ingested_at
FROM {db}.pipe_in;

CREATE MATERIALIZED VIEW {db}.pipe_mv_subjects TO {db}.event_subjects AS
SELECT
    CAST(s.1 AS Enum8('session' = 1, 'family' = 2, 'user' = 3, 'ip' = 4)) AS kind,
    s.2 AS subject, tenant, time_dt AS time, time_ns, type, id
FROM {db}.pipe_in
ARRAY JOIN [('session', session_id), ('family', if(family_id = '', session_id, family_id)), ('user', user_id), ('ip', ip)] AS s
WHERE s.2 != '' AND NOT (s.1 = 'family' AND (family_id = '' OR family_id = session_id));
