-- vigil's ClickHouse schema for database vigil on cluster vigil (vigil migrate --print).
-- vigil migrate records the versions in schema_migrations afterwards.

CREATE DATABASE IF NOT EXISTS vigil ON CLUSTER vigil;

CREATE TABLE IF NOT EXISTS vigil.schema_migrations_local ON CLUSTER vigil
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/vigil/{shard}/vigil/schema_migrations', '{replica}')
ORDER BY version;

CREATE TABLE IF NOT EXISTS vigil.schema_migrations ON CLUSTER vigil AS vigil.schema_migrations_local
ENGINE = Distributed(vigil, vigil, schema_migrations_local, cityHash64(version));

CREATE TABLE IF NOT EXISTS vigil.events_local ON CLUSTER vigil
(
    id              String,
    type            Enum8('session.created' = 1, 'login.failed' = 2, 'session.validated' = 3,
                          'token.refreshed' = 4, 'token.refresh_failed' = 5, 'session.elevated' = 6,
                          'session.logout' = 7, 'session.expired' = 8, 'session.revoked' = 9),
    time            DateTime,
    time_ns         Int64,
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
    attributes      Nested(key String, value String),
    kafka_partition UInt32,
    kafka_offset    Int64,
    ingested_at     DateTime DEFAULT now()
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/vigil/{shard}/vigil/events', '{replica}')
PARTITION BY toDate(time)
ORDER BY (type, time, id);

CREATE TABLE IF NOT EXISTS vigil.events ON CLUSTER vigil AS vigil.events_local
ENGINE = Distributed(vigil, vigil, events_local, cityHash64(type, time, id));

CREATE TABLE IF NOT EXISTS vigil.dead_letters_local ON CLUSTER vigil
(
    topic        String,
    partition    UInt32,
    offset       Int64,
    message_time DateTime,
    received_at  DateTime,
    reason       String,
    field        String,
    detail       String,
    key          String,
    value        String,
    headers      Nested(key String, value String)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/vigil/{shard}/vigil/dead_letters', '{replica}')
PARTITION BY toDate(message_time)
ORDER BY (topic, partition, offset);

CREATE TABLE IF NOT EXISTS vigil.dead_letters ON CLUSTER vigil AS vigil.dead_letters_local
ENGINE = Distributed(vigil, vigil, dead_letters_local, cityHash64(topic, partition, offset));

CREATE TABLE IF NOT EXISTS vigil.event_subjects_local ON CLUSTER vigil
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/vigil/{shard}/vigil/event_subjects', '{replica}')
PARTITION BY toDate(time)
ORDER BY (kind, subject, time, id);

CREATE TABLE IF NOT EXISTS vigil.event_subjects ON CLUSTER vigil AS vigil.event_subjects_local
ENGINE = Distributed(vigil, vigil, event_subjects_local, cityHash64(kind, subject, time, id));

CREATE MATERIALIZED VIEW IF NOT EXISTS vigil.event_subjects_mv ON CLUSTER vigil TO vigil.event_subjects_local AS
SELECT
    CAST(s.1 AS Enum8('session' = 1, 'family' = 2, 'user' = 3, 'ip' = 4)) AS kind,
    s.2 AS subject,
    tenant,
    time,
    time_ns,
    type,
    id
FROM vigil.events_local
ARRAY JOIN [('session', session_id), ('family', family_id), ('user', user_id), ('ip', ip)] AS s
WHERE s.2 != '' AND NOT (s.1 = 'family' AND family_id = session_id);

CREATE TABLE IF NOT EXISTS vigil.anomalies_local ON CLUSTER vigil
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/vigil/{shard}/vigil/anomalies', '{replica}')
PARTITION BY toDate(first_event_time)
ORDER BY (detector, id);

CREATE TABLE IF NOT EXISTS vigil.anomalies ON CLUSTER vigil AS vigil.anomalies_local
ENGINE = Distributed(vigil, vigil, anomalies_local, cityHash64(detector, id));

CREATE TABLE IF NOT EXISTS vigil.actions_local ON CLUSTER vigil
(
    action_id           String,
    attempt_id          String,
    attempt             UInt16,
    status              Enum8('sent' = 1, 'succeeded' = 2, 'failed' = 3, 'dry_run' = 4, 'suppressed' = 5, 'retrying' = 6, 'resumed' = 7),
    guardrail           String,
    action              String,
    scope               String,
    adapter             String,
    endpoint            String,
    tenant              String,
    user_id             String,
    session_id          String,
    family_id           String,
    ip                  String,
    reason              String,
    anomaly_id          String,
    kind                String,
    severity            String,
    rule                String,
    http_status         UInt16,
    error               String,
    note                String,
    latency_ms          Float64,
    time                DateTime,
    time_ns             Int64,
    requested_at_ns     Int64,
    first_event_time_ns Int64,
    time_to_revoke_ms   Float64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/vigil/{shard}/vigil/actions', '{replica}')
PARTITION BY toDate(time)
ORDER BY (action_id, attempt_id, status);

CREATE TABLE IF NOT EXISTS vigil.actions ON CLUSTER vigil AS vigil.actions_local
ENGINE = Distributed(vigil, vigil, actions_local, cityHash64(action_id, attempt_id, status));
