-- Every valid session event, exactly as sent. A replayed event (same type,
-- time and id) collapses on merge; read with FINAL or GROUP BY id for exact
-- counts. Partitioned by event day so retention drops whole days.
CREATE TABLE IF NOT EXISTS ${db}.events
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
ENGINE = ReplacingMergeTree()
PARTITION BY toDate(time)
ORDER BY (type, time, id);
