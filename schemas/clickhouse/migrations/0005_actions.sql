-- What vigil decided and did about each action intent: one row per
-- decision (dry_run, suppressed with the guardrail) and per attempt at the
-- session API (sent, then retrying, succeeded or failed). action_id is the
-- idempotency key sent to the API; attempt_id is unique per attempt, so an
-- insert retried after a lost answer collapses, while a resend after a
-- crash is a new row. Exactly one final row (succeeded, failed, dry_run or
-- suppressed) exists per action_id unless the revoker crashed between
-- writing it and committing its offset. A 'resumed' row (vigil revoke
-- resume) ends a halt of the blast-radius cap; its reason says why.
CREATE TABLE IF NOT EXISTS ${db}.actions
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
ENGINE = ReplacingMergeTree()
PARTITION BY toDate(time)
ORDER BY (action_id, attempt_id, status);
